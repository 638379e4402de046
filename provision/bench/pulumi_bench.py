"""`keelson bench pulumi`: the Pulumi stack on the lab through the real engine (the CLI keelson built, a file
backend, passphrase secrets), against the `keelson` CLI on the same cluster.

    up_fresh_s      `pulumi up` of an empty stack: the lab boots (5 hosts) and the cluster's resources run their
                    phases (the groups enabled in provision/cluster/groups.py)
    up_noop_s       `pulumi up` again: nothing to change (checked: a preview afterwards shows no step)
    preview_s       `pulumi preview` of the converged stack
    cluster_noop_s  `keelson apply --only <the same phases>` on the same cluster, with the operator state the stack
                    holds (written to a private folder): the CLI's no-op, connecting to every host
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import inventory as inventory_package
from provision.artifacts.build import StepEvent
from provision.artifacts.pulumi_tools.build import build
from provision.artifacts.pulumi_tools.catalog import PULUMI
from provision.bench import BenchError
from provision.bench.cli import run_keelson
from provision.cluster import groups
from provision.cluster.workdir import write_state
from provision.lab import Lab
from provision.lab.inventory_out import LAB_KUBELET
from provision.stack.local import LocalStack, passphrase
from roles.plans import apply

EXAMPLE = Path(inventory_package.__file__).resolve().parent / "examples" / "lab.yaml"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 (the marker of a secret value in Pulumi's JSON)


def _timed(fn: Callable[[], Any]) -> float:
    started = time.monotonic()
    fn()
    return round(time.monotonic() - started, 2)


def _plain(value: Any) -> Any:
    """A `pulumi stack export --show-secrets` value with its secrets opened."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return _plain(json.loads(value["plaintext"])) if "plaintext" in value else _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def cli_inputs(stack: LocalStack, lab: Lab, work: Path) -> tuple[Path, Path]:
    """The stack's inventory (the lab's key and known_hosts in place of the run's) and the operator state the stack
    holds, as files the CLI reads. `work` is private (0700) and removed by the caller."""
    exported = json.loads(stack.run("stack", "export", "--stack", stack.stack, "--show-secrets").stdout)
    resources = {r["urn"].split("::")[-1]: r for r in exported["deployment"]["resources"]}
    chain = [r for r in resources.values() if r["type"].endswith("keelson:PhaseGroup") and r["outputs"].get("chain")]
    last = chain[-1:]
    if not last:
        raise BenchError("the stack has no cluster-wide resource to take the operator state from")
    outputs = _plain(last[-1]["outputs"])
    data = dict(outputs["inventory"])
    data["ssh"] = {**data["ssh"], "key": str(lab.key_path), "known_hosts": str(lab.known_hosts_path)}
    inventory = work / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    state = write_state(work / "state", outputs["state"]).path
    return inventory, state


def only_flags(cluster_groups: list[groups.Group]) -> list[str]:
    titles = {p.title for g in cluster_groups for p in g.phases(apply.phases(_example()))}
    return [arg for title in sorted(titles) for arg in ("--only", title)]


def _example() -> Any:
    from inventory.loader import load_inventory

    return load_inventory(EXAMPLE)


def _no_report(event: StepEvent) -> None:
    return None


def require_artifacts() -> None:
    """etcd's binaries come from this machine's Kubernetes artifact set (the lab's source): built, or no figure."""
    from provision.artifacts import build as sets
    from provision.artifacts.catalog import DEFAULT_KUBERNETES, release

    if sets.find(release(DEFAULT_KUBERNETES)) is None:
        raise BenchError(
            f"bench pulumi runs etcd from the Kubernetes {DEFAULT_KUBERNETES} artifact set, which is not built",
            hint=f"keelson artifacts build --kubernetes {DEFAULT_KUBERNETES}",
        )


def lab_inventory(out: Path) -> Path:
    """The example lab inventory with the lab's artifact source (this machine's set: lab hosts reach no network) and
    the lab's kubelet thresholds (absolute, as `keelson lab up`'s inventory has them: a lab host's disk is this
    machine's shared file system, whose free share under 10-15 % tainted every node with disk-pressure and left the
    addons' pods unscheduled until the `up` failed)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["kubernetes"] = {**data.get("kubernetes", {}), "artifacts": {"source": "local"}, "kubelet": LAB_KUBELET}
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def bench_pulumi(name: str = "bench-pulumi") -> dict[str, Any]:
    require_artifacts()
    toolset = build(PULUMI, _no_report)  # cached; a cold build makes the engine first (tens of minutes)
    if name in Lab.names():
        Lab.load(name).down()
    with tempfile.TemporaryDirectory(prefix="keelson-bench-pulumi-") as tmp:
        stack = LocalStack(toolset, Path(tmp) / "stack", "bench", passphrase())
        inventory = lab_inventory(Path(tmp) / "inventory.yaml")
        stack.init({"keelson:inventory": str(inventory), "keelson:machines": "lab", "keelson:lab.name": name})
        try:
            result = _measure(stack, name, Path(tmp))
        except BaseException:
            _clean_up(stack, name, failing=True)
            raise
        _clean_up(stack, name, failing=False)
        return result


def _clean_up(stack: LocalStack, name: str, failing: bool) -> None:
    """Destroy the stack and take the lab down. When the measurement failed, its error is the one to see: a
    destroy that fails then (a half-made cluster: the workers' removal finds no master) is told on stderr only."""
    try:
        stack.destroy()
    except Exception as exc:
        if not failing:
            raise
        print(f"bench pulumi: cleaning up after the failure: {str(exc).splitlines()[0]}", file=sys.stderr)
    finally:
        if name in Lab.names():
            Lab.load(name).down()


def _summary(out: str) -> str:
    """The `Resources:` block of `pulumi up`'s output (what it created, updated, left unchanged…)."""
    return out.rpartition("Resources:")[2].split("Duration:")[0].strip()


def _measure(stack: LocalStack, name: str, tmp: Path) -> dict[str, Any]:
    up_fresh = _timed(stack.up)
    started = time.monotonic()
    noop = stack.up()
    up_noop = round(time.monotonic() - started, 2)
    done = _summary(noop.stdout)
    if any(word in done for word in ("created", "updated", "deleted", "replaced")):
        raise BenchError(f"the second `pulumi up` was no no-op: {' '.join(done.split())}")
    started = time.monotonic()
    left = stack.changes()
    preview = round(time.monotonic() - started, 2)
    if left:
        raise BenchError(f"the second `pulumi up` left changes: {left}")
    lab = Lab.load(name)
    work = tmp / "cli"
    work.mkdir(mode=0o700)
    inventory, state = cli_inputs(stack, lab, work)
    argv = ["apply", "-i", str(inventory), "--state-dir", str(state), "--json", *only_flags(groups.enabled())]
    runs = [run_keelson(*argv).check() for _ in range(2)]
    finished = json.loads(runs[-1].stdout.strip().splitlines()[-1])
    changed = {h: s["changed"] for h, s in finished.get("hosts", {}).items() if s.get("changed")}
    if changed:
        raise BenchError(f"the CLI's no-op apply changed hosts after `pulumi up`: {changed}")
    cluster_noop = round(runs[-1].wall_s, 2)
    return {
        "hosts": len(lab.hosts),
        "groups": [g.name for g in groups.enabled()],
        "up_fresh_s": up_fresh,
        "up_noop_s": up_noop,
        "preview_s": preview,
        "cluster_noop_s": cluster_noop,
        "noop_ratio": round(up_noop / cluster_noop, 2) if cluster_noop else None,
    }
