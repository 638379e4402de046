"""What a phase group would do to a blank host, hashed: the "rendered inputs" a resource's diff compares.

For each phase of the group and each of the resource's hosts, every step is checked against the facts of a host
that has nothing yet (each fact's parser given empty output: its safe default), so the commands it returns are the
whole desired state — file contents (hashed with their command), packages, units, commands with their arguments.
A phase with its own orchestration (PKI issuing, etcd start, …) is hashed by its hosts and their node IPs. A
per-host group also hashes the host's own inventory entry (labels included): the resource stands for that host.

Nothing here connects to a host or keeps anything: the state dir it reads is a private copy, thrown away.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from provision.cluster.groups import Group
from roles.engine.context import HostContext
from roles.engine.fact_cache import phase_facts
from roles.engine.facts import FactValues
from roles.engine.nodes import NodeIPs
from roles.engine.phase import AnyPhase, CustomPhase, Phase
from roles.plans import apply


def blank_facts(phase: Phase, ctx: HostContext) -> FactValues:
    return FactValues({fact.key: fact.parse("", -1) for fact in phase_facts(phase, ctx)})


def _step_lines(phase: Phase, ctx: HostContext) -> Iterable[str]:
    facts = blank_facts(phase, ctx)
    for step in phase.steps:
        yield f"step {step.name}"
        try:
            commands = step.check(ctx, facts)
        except KeelsonError as exc:  # e.g. a node IP only a live run discovers, a certificate not issued yet
            yield f"  unrendered: {type(exc).__name__}"
            continue
        for command in commands:
            yield "  " + command.script
            yield from (f"  upload {u.name} {u.source}" for u in command.uploads)
    yield from (f"handler {h.name}" for h in phase.handlers)
    yield f"serial {phase.serial}"


def _custom_lines(phase: CustomPhase, hosts: list[Host], nodes: NodeIPs) -> Iterable[str]:
    for host in hosts:
        ip = nodes.get(host)
        yield f"host {host.name} {ip if ip is not None else 'discovered at run time'}"


def phase_digest(phase: AnyPhase, cluster: Cluster, hosts: list[Host], state_dir: Path) -> str:
    h = hashlib.sha256(phase.title.encode() + b"\n")
    private = str(state_dir.parent)  # each look works in its own temporary folder: its name is no input
    if isinstance(phase, Phase):
        for host in hosts:
            h.update(f"on {host.name}\n".encode())
            for line in _step_lines(phase, HostContext(cluster, host, state_dir)):
                h.update(line.replace(private, "<private>").encode() + b"\n")
    else:
        for line in _custom_lines(phase, hosts, NodeIPs(cluster)):
            h.update(line.encode() + b"\n")
    return h.hexdigest()[:16]


def host_digest(host: Host) -> str:
    return hashlib.sha256(host.model_dump_json().encode()).hexdigest()[:16]


def phase_digests(cluster: Cluster, group: Group, host_names: Iterable[str], state_dir: Path) -> dict[str, str]:
    """Per phase title (and, for a per-host group, `host <name>`), the digest of what it would do on these hosts."""
    wanted = set(host_names)
    out: dict[str, str] = {}
    for phase in group.phases(apply.phases(cluster)):
        hosts = [h for h in phase.hosts(cluster) if h.name in wanted]
        if hosts:
            out[phase.title] = phase_digest(phase, cluster, hosts, state_dir)
    if group.per_host:
        out.update({f"host {h.name}": host_digest(h) for h in cluster.hosts if h.name in wanted})
    return out


def combined(digests: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()


def fingerprint(cluster: Cluster, group: Group, host_names: Iterable[str], state_dir: Path) -> dict[str, Any]:
    digests = phase_digests(cluster, group, host_names, state_dir)
    return {"fingerprint": combined(digests), "phases": digests}
