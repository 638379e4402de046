"""`keelson bench vip`: how fast the API VIP moves when its holder loses keepalived, haproxy, or its power.

A bounded client loop requests https://VIP:port/healthz (0.1 s timeout, 10 ms pace, at most 30 s) from this
machine; a failover's time runs from the fault to the first answer, and the holder is then checked to be another host.
"""

from __future__ import annotations

import ssl
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.bench import BenchError
from provision.lab import Lab, LabSpec, fake_apiserver, faults
from provision.lab.faults import Fault
from roles import loadbalancer
from roles.engine.context import RunContext
from roles.engine.runner import RunReport, run_plan

PROBE_TIMEOUT_S = 0.1  # lab round trips are sub-millisecond; a TLS answer takes ~10 ms
PACE_S = 0.01
MAX_FAILOVER_S = 30.0


def _tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test stand-in's self-signed certificate
    return ctx


TLS = _tls()


def get(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    try:
        with urllib.request.urlopen(url, context=TLS, timeout=timeout) as resp:  # noqa: S310 - https URLs we build
            return str(resp.read().decode())
    except OSError:
        return None


def holders(lab: Lab, hosts: list[str]) -> list[str]:
    def has(host: str) -> bool:
        if not lab.is_running(host):
            return False
        out = lab.run(host, "ip -o -4 addr show dev host0", check=False, timeout=10).stdout
        return f" {lab.vip}/" in out

    with ThreadPoolExecutor(len(hosts)) as pool:
        return [h for h, yes in zip(hosts, pool.map(has, hosts), strict=True) if yes]


def wait_for(condition: Callable[[], Any], deadline_s: float, what: str) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {deadline_s} s")


def single_holder(lab: Lab, hosts: list[str], deadline_s: float = 30) -> str:
    def one() -> list[str] | None:
        found = holders(lab, hosts)
        return found if len(found) == 1 else None

    only: list[str] = wait_for(one, deadline_s, "exactly one VIP holder")
    return only[0]


@dataclass(frozen=True)
class Failover:
    seconds: float
    failed_requests: int
    old: str
    new: str


def host_macs(lab: Lab, hosts: list[str]) -> dict[str, str]:
    return {h: lab.run(h, "cat /sys/class/net/host0/address").stdout.strip() for h in hosts}


def answering_mac(lab: Lab) -> str | None:
    """The MAC this machine sends VIP traffic to: the holder's, as its gratuitous ARP announced it."""
    out = subprocess.run(
        ["ip", "neigh", "show", "to", lab.vip, "dev", lab.net.bridge], capture_output=True, text=True, check=False
    ).stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else None


def measure(lab: Lab, url: str, hosts: list[str], fault: Fault) -> Failover:
    """Issue the fault and probe at once; done at the first answer that comes from another holder.

    Lab hosts share this machine's clock, so a fault run on a host reports its own moment (`$EPOCHREALTIME`):
    the figure does not include starting ssh.
    """
    old = single_holder(lab, hosts)
    macs = host_macs(lab, hosts)
    failed = 0
    moment: list[float] = []
    worker = threading.Thread(target=lambda: moment.append(fault.inject(lab, old)))
    started = time.time()
    worker.start()
    while time.time() - started < MAX_FAILOVER_S:
        if get(url) is None:
            failed += 1
        elif answering_mac(lab) not in (None, macs[old]):
            break
        time.sleep(PACE_S)
    else:
        raise TimeoutError(f"no answer from a new holder within {MAX_FAILOVER_S} s after the fault on {old}")
    answered = time.time()
    worker.join()
    seconds = answered - (moment[0] if moment else started)
    new = single_holder(lab, [h for h in hosts if h != old] + [old])
    if new == old:
        raise AssertionError(f"the VIP answered again but never left {old}")
    return Failover(seconds, failed, old, new)


def apply_lb(cluster: Cluster, state: Path) -> RunReport:
    report = run_plan(loadbalancer.phases(cluster), RunContext(cluster, state))
    if not report.ok:
        raise BenchError(f"load balancer apply failed: { {h: s.errors for h, s in report.hosts.items() if s.errors} }")
    return report


def setup(name: str, work: Path, masters: int = 3, lbs: int = 0) -> tuple[Lab, Cluster]:
    """A fresh lab with the stand-in apiserver on each master and the load balancer applied (state under `work`)."""
    if name in Lab.names():
        Lab.load(name).down()
    lab = Lab.up(LabSpec(name=name, masters=masters, workers=0, lbs=lbs), inventory_out=work / f"{name}.yaml")
    try:
        cluster = load_inventory(lab.inventory_path)
        for m in cluster.masters:
            fake_apiserver.start(lab, m.name)
        apply_lb(cluster, work / "state")
    except BaseException:
        lab.down()
        raise
    return lab, cluster


FAULTS: dict[str, Fault] = {  # figure -> the fault on the VIP's holder (provision.lab.faults)
    "keepalived_stop_s": faults.unit_stopped("keepalived"),
    "haproxy_kill_s": faults.process_killed("haproxy"),  # undone by systemd (Restart=always)
    "host_kill_s": faults.POWER_OFF,
}


def recover(lab: Lab, host: str, figure: str) -> None:
    FAULTS[figure].undo(lab, host)
    if figure == "host_kill_s":
        fake_apiserver.start(lab, host)  # the stand-in is a transient unit: gone with the power


def bench_vip(rounds: int = 3, name: str = "bench-vip") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="keelson-bench-vip-") as work:
        return _bench_vip(rounds, name, Path(work))


def _bench_vip(rounds: int, name: str, work: Path) -> dict[str, Any]:
    lab, cluster = setup(name, work)
    try:
        hosts = [h.name for h in cluster.lb_hosts]
        url = f"https://{lab.vip}:{cluster.api_port}/healthz"
        wait_for(lambda: get(url), 30, "the VIP answering")
        times: dict[str, list[float]] = {k: [] for k in FAULTS}
        failed: dict[str, int] = dict.fromkeys(times, 0)
        for _ in range(rounds):
            for key, fault in FAULTS.items():
                result = measure(lab, url, hosts, fault)
                times[key].append(result.seconds)
                failed[key] += result.failed_requests
                recover(lab, result.old, key)
                wait_for(lambda: get(url), 30, "the VIP answering after recovery")
    finally:
        lab.down()
    out: dict[str, Any] = {k: round(statistics.median(v), 3) for k, v in times.items()}
    out["failed_requests"] = sum(failed.values())
    out["rounds"] = rounds
    out["samples_s"] = {k: [round(x, 3) for x in v] for k, v in times.items()}
    out["failed_requests_by_fault"] = failed
    return out
