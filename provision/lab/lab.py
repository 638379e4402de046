"""A lab: N full Debian hosts (systemd-nspawn on an overlay each) on a private bridge, reachable by strict SSH.

`Lab.up(spec)` boots them (building the cached rootfs once), `lab.down()` leaves nothing behind, `start` boots a
stopped host again. Faults (power off, stop a unit, freeze, …) are in `provision.lab.faults`. The recipe and its
pitfalls are in shared/LAB.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from provision.lab import cgroups, files, host_setup, inventory_out, network, rootfs
from provision.lab.errors import LabError
from provision.lab.network import LabNetwork
from provision.lab.paths import LabPaths, lab_root
from provision.lab.topology import LabHost, LabSpec, hosts_for

log = logging.getLogger(__name__)

BOOT_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LabState:
    name: str
    index: int
    spec: LabSpec
    hosts: list[LabHost]
    base: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "index": self.index,
                "spec": asdict(self.spec),
                "hosts": [asdict(h) for h in self.hosts],
                "base": self.base,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data = json.loads(text)
        return cls(
            data["name"], data["index"], LabSpec(**data["spec"]), [LabHost(**h) for h in data["hosts"]], data["base"]
        )


class Lab:
    """A running (or partly running) lab, loaded from its state dir."""

    def __init__(self, state: LabState, inventory_path: Path | None = None) -> None:
        self.state = state
        self.paths = LabPaths(state.name)
        self.net = LabNetwork(state.index)
        self.inventory_path = inventory_path or self.paths.root / "inventory.yaml"

    # -- what tests and the CLI read ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.state.name

    @property
    def hosts(self) -> list[LabHost]:
        return list(self.state.hosts)

    @property
    def key_path(self) -> Path:
        return self.paths.key

    @property
    def known_hosts_path(self) -> Path:
        return self.paths.known_hosts

    @property
    def ssh_config_path(self) -> Path:
        return self.paths.ssh_config

    @property
    def gateway(self) -> str:
        return str(self.net.gateway)

    @property
    def vip(self) -> str:
        return str(self.net.vip.ip)

    def host(self, name: str) -> LabHost:
        for h in self.state.hosts:
            if h.name == name:
                return h
        raise LabError(f"lab {self.name!r} has no host {name!r}", hint=", ".join(h.name for h in self.state.hosts))

    # -- lifecycle -----------------------------------------------------------------------------------
    @classmethod
    def up(cls, spec: LabSpec, inventory_out: Path | None = None) -> Lab:
        spec.validate()
        host_setup.require_root()
        host_setup.ensure_host_packages()
        paths = LabPaths(spec.name)
        base = rootfs.ensure_base(user=paths.state_file)
        host_setup.raise_inotify_limits()
        existing = cls.load(spec.name) if paths.state_file.exists() else None
        if existing is not None and existing.state.spec != spec:
            raise LabError(
                f"lab {spec.name!r} already exists with {existing.state.spec}",
                hint=f"keelson lab down --name {spec.name}, or use another --name",
            )
        net = network.allocate(spec.name)
        state = LabState(spec.name, net.index, spec, hosts_for(spec, net), str(base))
        paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.run.mkdir(exist_ok=True)
        files.write_atomic(paths.state_file, state.to_json())
        lab = cls(state, inventory_out or Path("inventory/generated") / f"{spec.name}.yaml")
        network.ensure_bridge(net)
        lab._ensure_key()
        for host in state.hosts:
            if lab._launcher_pid(host.name) is None:  # `up` again boots only what is down
                lab._launch(host)
        lab._wait_ready(state.hosts)
        lab._write_access_files()
        return lab

    @classmethod
    def load(cls, name: str) -> Lab:
        paths = LabPaths(name)
        if not paths.state_file.exists():
            raise LabError(f"no lab named {name!r}", hint="keelson lab up --name NAME …; keelson lab status")
        inv = paths.root / "inventory.path"
        return cls(
            LabState.from_json(paths.state_file.read_text()), Path(inv.read_text().strip()) if inv.exists() else None
        )

    @staticmethod
    def names() -> list[str]:
        root = lab_root()
        return sorted(p.parent.name for p in root.glob("*/lab.json")) if root.exists() else []

    def down(self, keep_state: bool = False) -> None:
        """Power everything off, unmount, remove cgroups, bridge and files. Hosts whose disks go with them are
        powered off hard at once (cgroup.kill): like a real machine, a host waits up to 90 s at shutdown for a
        container that ignores SIGTERM. With `keep_state`, a clean poweroff first, hard after a deadline."""
        running = [h.name for h in self.state.hosts if self._launcher_pid(h.name) is not None]
        for name in running:
            pid = self._launcher_pid(name)
            if pid is not None and not keep_state and cgroups.can_kill(self.name, name):
                cgroups.kill(self.name, name)
            elif pid is not None:
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name in running:
            if not self._wait_launcher_gone(name, deadline):
                log.warning("%s: no clean poweroff in %.0f s, killing it", name, STOP_TIMEOUT_S)
                self._hard_stop(name)
        for host in self.state.hosts:
            self._teardown_host(host.name, keep_state)
        network.delete_link(self.net.bridge)
        network.release(self.name)
        if not keep_state:
            rootfs.forget_user(self.paths.state_file)
            self._remove_inventory()
            shutil.rmtree(self.paths.root, ignore_errors=True)

    def kill(self, host_name: str) -> None:
        """Hard power-off (the lab fault `faults.power_off`: every process SIGKILLed at once through cgroup.kill)."""
        from provision.lab import faults

        faults.power_off(self, host_name)

    def start(self, host_name: str) -> None:
        """Boot a stopped host (same disk, same host key) and wait until it answers SSH; a running one is left as is."""
        host = self.host(host_name)
        if self._launcher_pid(host.name) is None:
            self._launch(host)
        self._wait_ready([host])
        self._write_access_files()

    def is_running(self, host_name: str) -> bool:
        return self._launcher_pid(self.host(host_name).name) is not None

    # -- using the hosts -----------------------------------------------------------------------------
    def ssh_argv(self, host_name: str, command: str | None = None) -> list[str]:
        argv = ["ssh", "-F", str(self.paths.ssh_config), "--", self.host(host_name).name]  # `--`: no option after it
        return [*argv, command] if command is not None else argv

    def run(
        self, host_name: str, command: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.ssh_argv(host_name, command), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise LabError(f"{host_name}: `{command}` exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
        return proc

    def console(self, host_name: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a command in the host without SSH (nsenter into its init): for when sshd itself is down."""
        pid = self._init_pid(self.host(host_name).name)
        if pid is None:
            raise LabError(f"{host_name}: not running")
        return subprocess.run(
            ["nsenter", "-t", str(pid), "-a", "bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _init_pid(self, host: str) -> int | None:
        """launcher → systemd-nspawn → the container's init."""
        pid = self._launcher_pid(host)
        for _ in range(2):
            if pid is None:
                return None
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            pid = int(children[0]) if children else None
        return pid

    def memory_mib(self) -> dict[str, float]:
        out = {}
        for host in self.state.hosts:
            used = cgroups.memory_bytes_in(self._cgroup_dirs(host.name))
            if used is not None:
                out[host.name] = used / 2**20
        return out

    # -- internals -----------------------------------------------------------------------------------
    def _ensure_key(self) -> None:
        if self.paths.key.exists():
            return
        self.paths.key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"keelson-lab-{self.name}"]
        subprocess.run([*argv, "-f", str(self.paths.key)], check=True)

    def _mount(self, host: str) -> Path:
        d = self.paths.host_dir(host)
        merged = d / "merged"
        for sub in ("upper", "work", "merged"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if not os.path.ismount(merged):
            opts = f"lowerdir={self.state.base},upperdir={d / 'upper'},workdir={d / 'work'}"
            proc = subprocess.run(
                ["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise LabError(f"{host}: cannot mount its overlay: {proc.stderr.strip()}")
        return merged

    def _launch(self, host: LabHost) -> None:
        merged = self._mount(host.name)
        pubkey = self.paths.key.with_suffix(".pub").read_text()
        files.write_identity(merged, host, self.state.hosts, self.net, pubkey)
        network.delete_link(f"vb-{self.net.machine(host.name)}")  # a hard-killed host's veth lingers (pitfall 5)
        dirs = [str(d) for d in self._cgroup_dirs(host.name)]  # the launcher makes them: it has our cgroups
        files.write_atomic(self.paths.cgroups_record(host.name), json.dumps(dirs, indent=1))
        logf = open(self.paths.log(host.name), "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "provision.lab.launcher",
                    self.name,
                    host.name,
                    str(merged),
                    self.net.machine(host.name),
                    self.net.bridge,
                ],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                start_new_session=True,
                cwd="/",
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            )
        finally:
            logf.close()
        self.paths.launcher_pid(host.name).write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + 10  # until exec, /proc/PID/cmdline still shows the parent's command line
        while self._launcher_pid(host.name) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(
                    f"{host.name}: its launcher did not start (exit {proc.poll()})",
                    hint=f"see {self.paths.log(host.name)}",
                )
            time.sleep(0.002)

    def _launcher_pid(self, host: str) -> int | None:
        """The launcher's pid if it is alive and really ours (checked through /proc/PID/cmdline)."""
        f = self.paths.launcher_pid(host)
        try:
            pid = int(f.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if b"provision.lab.launcher" in cmdline and self.name.encode() in cmdline and host.encode() in cmdline:
            return pid
        if cmdline == [b""]:  # a zombie: a launcher this process started has exited; collect it
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        return None

    def _wait_launcher_gone(self, host: str, deadline: float) -> bool:
        while self._launcher_pid(host) is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _hard_stop(self, host: str) -> None:
        cgroups.kill(self.name, host)
        pid = self._launcher_pid(host)
        if pid is not None and not self._wait_launcher_gone(host, time.monotonic() + 5):
            os.kill(pid, signal.SIGKILL)

    def _teardown_host(self, host: str, keep_state: bool) -> None:
        merged = self.paths.merged(host)
        if os.path.ismount(merged):
            proc = subprocess.run(["umount", str(merged)], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                subprocess.run(["umount", "-l", str(merged)], check=False)
        cgroups.remove_dirs(self._cgroup_dirs(host))
        network.delete_link(f"vb-{self.net.machine(host)}")
        self.paths.launcher_pid(host).unlink(missing_ok=True)
        if not keep_state:
            shutil.rmtree(self.paths.host_dir(host), ignore_errors=True)

    def _cgroup_dirs(self, host: str) -> list[Path]:
        """The host's cgroup folders: those its launches recorded, and those this process would make."""
        recorded: list[str] = []
        with contextlib.suppress(OSError, ValueError):
            recorded = json.loads(self.paths.cgroups_record(host).read_text())
        computed = cgroups.host_dirs(self.name, host)
        return [*computed, *(Path(d) for d in recorded if Path(d) not in computed)]

    def _wait_ready(self, hosts: list[LabHost]) -> None:
        """Each host: its launcher alive, its own host key written, and sshd answering with an SSH banner."""
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        pending = {h.name: h for h in hosts}
        with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
            while pending:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"hosts not reachable after {BOOT_TIMEOUT_S:.0f} s: {', '.join(sorted(pending))}",
                        hint=f"see {self.paths.run}/<host>.log; then keelson lab down --name {self.name}",
                    )
                for name in list(pending):
                    if self._launcher_pid(name) is None:
                        tail = self.paths.log(name).read_text(errors="replace").strip().splitlines()[-5:]
                        raise LabError(
                            f"{name}: its container stopped while booting: {' | '.join(tail)}",
                            hint=f"see {self.paths.log(name)}; then keelson lab down --name {self.name}",
                        )
                ready = dict(zip(pending, pool.map(self._ready, pending.values()), strict=True))
                for name, ok in ready.items():
                    if ok:
                        del pending[name]
                if pending:
                    time.sleep(0.05)

    def _ready(self, host: LabHost) -> bool:
        if not (self.paths.merged(host.name) / "etc/ssh/ssh_host_ed25519_key.pub").exists():
            return False
        try:
            with socket.create_connection((host.address, 22), timeout=0.5) as sock:
                sock.settimeout(1.0)
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def _write_access_files(self) -> None:
        """known_hosts from each host's own key file (read from its disk, not trusted off the network)."""
        lines = []
        for host in self.state.hosts:
            pub = self.paths.merged(host.name) / "etc/ssh/ssh_host_ed25519_key.pub"
            if pub.exists():
                kind, key = pub.read_text().split()[:2]
                lines.append(f"{host.name},{host.address} {kind} {key}\n")
        files.write_atomic(self.paths.known_hosts, "".join(lines), mode=0o600)
        files.write_atomic(
            self.paths.ssh_config, files.ssh_config(self.state.hosts, self.paths.key, self.paths.known_hosts)
        )
        text = inventory_out.render(self.state.spec, self.state.hosts, self.net, self.paths.key, self.paths.known_hosts)
        target = self.inventory_path.resolve()
        files.write_atomic(target, text)
        files.write_atomic(self.paths.root / "inventory.yaml", text)
        files.write_atomic(self.paths.root / "inventory.path", f"{target}\n")
        self.inventory_path = target
        inventory_out.check(target)

    def _remove_inventory(self) -> None:
        """The generated inventory names this lab's key and addresses: it goes with the lab (if nobody edited it)."""
        ours = self.paths.root / "inventory.yaml"
        with contextlib.suppress(OSError):
            if self.inventory_path.read_text() == ours.read_text():
                self.inventory_path.unlink()
