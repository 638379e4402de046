"""Role `containerd`: the container runtime, with systemd cgroups and the sandbox image kubelet expects."""

from __future__ import annotations

from inventory.model import Cluster
from roles.containerd.defaults import DEFAULTS
from roles.engine.phase import Phase, linux_hosts
from roles.engine.step import FileStep, PackagesStep, ServiceStep, Step, restart
from roles.templating import render


def config_toml() -> str:
    return render(
        __file__, "config.toml.j2", sandbox_image=DEFAULTS.sandbox_image, systemd_cgroup=DEFAULTS.systemd_cgroup
    )


def steps() -> list[Step]:
    return [
        PackagesStep(("containerd",), name="containerd | package"),
        FileStep(
            DEFAULTS.config_path,
            config_toml(),
            validate="containerd --config %s config dump >/dev/null",
            notifies=("restart containerd",),
            name="containerd | config",
        ),
        ServiceStep("containerd", name="containerd | service"),
    ]


def phases(cluster: Cluster) -> list[Phase]:
    return [Phase("Container runtime", linux_hosts, steps(), handlers=[restart("containerd")])]
