"""TEST STAND-INS for the Windows worker tests (Windows cannot run here).

- `fake_windows_mirror`: a folder in the mirror layout holding FAKE Windows (and Linux) payloads (a few bytes of
  text each, never executed anywhere) with their `.sha256` files, so the operator side resolves real digests over
  HTTP on loopback (provision/artifacts/serve.py) with no traffic beyond this machine.
- `plan_phase` / `windows_phase_commands`: a Windows phase's commands from facts in the shape a fresh Windows
  Server prints (nothing installed, the Containers feature available), without any host.
- `windows_variant`: inventory/examples/ha-5-windows.yaml pointed at that mirror (images pulled), its hosts moved to
  addresses the caller gives (lab hosts, where the two Windows workers are lab Linux hosts with a stand-in
  `powershell`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from inventory.model import Cluster
from provision.artifacts import layout
from provision.artifacts.catalog import release
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.facts import Fact, FactValues
from roles.engine.phase import Phase
from roles.windows.defaults import DEFAULTS
from roles.windows.facts import FeatureState
from roles.windows.phases import phases as windows_phases

EXAMPLE = Path(__file__).resolve().parents[1] / "inventory" / "examples" / "ha-5-windows.yaml"
REL = release("v1.37.2")


def windows_remotes() -> list[layout.Remote]:
    return [
        *(layout.kube_binary_windows(REL, n) for n in ("kubelet", "kube-proxy", "kubeadm", "kubectl")),
        layout.containerd_windows_archive(DEFAULTS.containerd_version),
        layout.cni_windows_archive(REL),
        layout.flannel_cni_windows_archive(layout.UPSTREAM_FLANNEL_CNI),
        layout.flanneld_windows_archive(REL),
    ]


def linux_remotes() -> list[layout.Remote]:
    """What the Linux phases resolve from a mirror (images are pulled in these tests, so no image tarballs)."""
    return [
        *(layout.kube_binary(REL, n) for n in ("kubeadm", "kubelet", "kubectl")),
        layout.crictl_archive(REL),
        layout.cni_archive(REL),
        layout.flannel_cni_archive(REL.flannel_cni),
        layout.etcd_archive(REL),
    ]


def fake_windows_mirror(root: Path, *, linux: bool = False) -> dict[str, str]:
    """Write the fake payloads and their .sha256 files under `root` (the Linux ones too with `linux`); returns
    {layout path: sha256}."""
    digests = {}
    for remote in windows_remotes() + (linux_remotes() if linux else []):
        data = f"keelson TEST STAND-IN for {remote.path} (not a real binary)\n".encode()
        target = root / remote.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        target.with_name(target.name + ".sha256").write_text(f"{digest}  {target.name}\n")
        digests[remote.path] = digest
    return digests


def windows_variant(mirror_url: str, addresses: dict[str, str] | None = None, **top: Any) -> dict[str, Any]:
    """The ha-5-windows example with `kubernetes.artifacts` on the mirror (images pulled) and the given host
    addresses (and top-level sections) replaced."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    artifacts = {"source": "mirror", "mirror": mirror_url, "images": "pull"}
    doc["kubernetes"] = {"version": REL.kubernetes, "artifacts": artifacts}
    for host in doc["hosts"]:
        if addresses and host["name"] in addresses:
            host["address"] = addresses[host["name"]]
    doc.update(top)
    return doc


def fresh_output(fact: Fact[Any]) -> str:
    """What a fresh Windows Server prints for a fact: nothing installed, the Containers feature available."""
    return "Available\n" if isinstance(fact, FeatureState) else ""


def plan_phase(phase: Phase, ctx: HostContext, outputs: dict[str, str] | None = None) -> list[Command]:
    facts = {f.key: f for step in phase.steps for f in step.facts(ctx)}
    given = outputs or {}
    values = FactValues({k: f.parse(given.get(k, fresh_output(f)), 0) for k, f in facts.items()})
    return [c for step in phase.steps for c in step.check(ctx, values)]


def windows_phase_commands(cluster: Cluster, state: Path) -> dict[tuple[str, str], list[Command]]:
    rc = RunContext(cluster, state, dry_run=True)
    out = {}
    for phase in windows_phases(cluster):
        if isinstance(phase, Phase):
            for host in phase.hosts(cluster):
                out[(phase.title, host.name)] = plan_phase(phase, rc.host_context(host))
    return out
