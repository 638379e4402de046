"""etcd membership, the pure parts: what `etcdctl member list -w json` says, and the decisions a join or a removal of
members takes from it (no host is asked here; `roles/etcd/membership.py` asks and acts).

- `parse_member_list`: the members (id, name, peer and client URLs); an added member that has not started yet has no
  name and no client URL. Junk → [].
- `join_plan`: per joining host, whether it still needs `member add` and a start — a member already listed by its
  name or its peer URL (started or not) is not added again — or a refusal, before anything changes.
- `initial_cluster_for`: the `initial-cluster` a joining member starts with (`name=peer-url,…` of every member of the
  running cluster, itself included: what `etcdctl member add` answers).
- `count_problem`: the quorum and odd-count rule for taking members out.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster
from roles.engine.nodes import NodeIPs
from roles.etcd.commands import member_peer_url
from roles.etcd.facts import MemberState


class MembershipRefused(KeelsonError):
    """The running etcd cluster is not in a state a member can join or leave safely (nothing was changed)."""


@dataclass(frozen=True)
class Member:
    id: int
    name: str  # "" until the member has started once
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()
    learner: bool = False

    @property
    def started(self) -> bool:
        return bool(self.name)

    @property
    def hex_id(self) -> str:
        """The id as etcdctl takes it (`member remove 8e9e05c52164694d`)."""
        return format(self.id, "x")


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def parse_member_list(stdout: str) -> list[Member]:
    """`etcdctl member list -w json` (also `member add … -w json`, whose `members` are the cluster after the add):
    `{"header": …, "members": [{"ID": 1, "name": "m1", "peerURLs": […], "clientURLs": […]}, …]}`. The ids are
    uint64 numbers (Python's json keeps them exact). Junk, or a member without an id or a peer URL, is skipped."""
    start = stdout.find("{")
    if start < 0:
        return []
    try:
        data = json.loads(stdout[start : stdout.rfind("}") + 1])
    except ValueError:
        return []
    items = data.get("members") if isinstance(data, dict) else None
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("ID"), int) or not _strings(item.get("peerURLs")):
            continue
        name = item.get("name") if isinstance(item.get("name"), str) else ""
        out.append(
            Member(
                item["ID"],
                str(name),
                _strings(item.get("peerURLs")),
                _strings(item.get("clientURLs")),
                item.get("isLearner") is True,
            )
        )
    return out


def find_member(members: Sequence[Member], name: str, peer_url: str) -> Member | None:
    """The member for an inventory host: listed by its name (started), or by its peer URL (added, maybe not started)."""
    return next((m for m in members if m.name == name), None) or next(
        (m for m in members if peer_url in m.peer_urls), None
    )


def peer_names(cluster: Cluster, nodes: NodeIPs | None = None) -> dict[str, str]:
    """Peer URL → inventory host name, for every etcd member of the inventory."""
    return {member_peer_url(cluster, h, nodes): h.name for h in cluster.etcd_members}


def initial_cluster_for(members: Sequence[Member], names_by_peer: Mapping[str, str], order: Sequence[str] = ()) -> str:
    """`name=peer-url,…` for every member of the running cluster: a started member by its own name, an added one that
    has not started by the inventory host its peer URL belongs to. Listed in `order` (inventory order), others after,
    by name. Raises MembershipRefused for an added member that is no inventory host (etcd would start with a nameless
    entry)."""
    entries = []
    for member in members:
        for url in member.peer_urls:
            name = member.name or names_by_peer.get(url, "")
            if not name:
                raise MembershipRefused(
                    f"etcd lists a member that was added but never started and is no host of the inventory: {url} "
                    f"(id {member.hex_id})",
                    hint=f"remove it from a member: etcdctl member remove {member.hex_id}; then join again",
                )
            entries.append((name, url))
    rank = {name: i for i, name in enumerate(order)}
    entries.sort(key=lambda e: (rank.get(e[0], len(rank)), e[0], e[1]))
    return ",".join(f"{name}={url}" for name, url in entries)


@dataclass(frozen=True)
class MemberJoin:
    """What a joining host still needs: `add` (etcdctl member add, run on a member of the cluster) and `start` (its
    config with `initial-cluster-state: existing`, then etcd started). Neither: it is a member already."""

    host: str
    add: bool
    start: bool


def join_plan(
    cluster: Cluster,
    joining: Collection[str],
    members: Sequence[Member],
    states: Mapping[str, MemberState],
    nodes: NodeIPs | None = None,
) -> list[MemberJoin]:
    """Per joining etcd member of the inventory (inventory order), what it needs; raises MembershipRefused first, when
    a member of the inventory that is not joining is not a started member of the running cluster (name it too: the
    cluster must be what the inventory says once the join is done), or when a joining host has data but is not a
    started member (data of an earlier life: reset it first), or is listed as started but lost its data."""
    hosts = [h for h in cluster.etcd_members if h.name in joining]
    started = {m.name for m in members if m.started}
    absent = [h.name for h in cluster.etcd_members if h.name not in joining and h.name not in started]
    if absent:
        raise MembershipRefused(
            f"{', '.join(absent)}: in the inventory as etcd member(s) but not started member(s) of the running etcd "
            "cluster, and not named to join",
            hint=f"join them in the same command: keelson join -i INVENTORY {' '.join([*joining, *absent])}",
        )
    out = []
    for host in hosts:
        member = find_member(members, host.name, member_peer_url(cluster, host, nodes))
        state = states[host.name]
        if member is not None and member.started:
            if not state.has_data:
                raise MembershipRefused(
                    f"{host.name}: etcd lists it as a started member (id {member.hex_id}) but its data dir is empty",
                    hint=f"take the old member out first: keelson remove -i INVENTORY {host.name} --force; "
                    f"then keelson join -i INVENTORY {host.name}",
                )
            out.append(MemberJoin(host.name, add=False, start=not state.running))
            continue
        if state.has_data:
            raise MembershipRefused(
                f"{host.name}: has etcd data but is not a member of the running cluster (left from an earlier life)",
                hint=f"clean it first: keelson reset -i INVENTORY {host.name} --force --yes; then join it",
            )
        out.append(MemberJoin(host.name, add=member is None, start=True))
    return out


def without(cluster: Cluster, names: Collection[str]) -> Cluster:
    """The cluster as it is once `names` left it (or before they joined): the inventory without those hosts."""
    return cluster.model_copy(update={"hosts": [h for h in cluster.hosts if h.name not in names]})


def quorum(members: int) -> int:
    return members // 2 + 1


def count_problem(members: int, leaving: int, *, force: bool) -> str | None:
    """Why taking `leaving` of `members` etcd members out is refused (a phrase: "3 → 2 members: …"), or None. Never
    every member; without `force`, not below a majority of the members there are now (the ones that stay must carry
    every `member remove`, even if those leaving are dead) and never to an even count (an even cluster tolerates no
    more failures than the odd one below it; 2 members tolerate none)."""
    if leaving <= 0:
        return None
    left = members - leaving
    change = f"{members} → {left} etcd members"
    if left <= 0:
        return f"{change}: none would be left"
    if force:
        return None
    if left < quorum(members):
        return f"{change} loses quorum: {left} of {members} is not a majority ({quorum(members)})"
    if left % 2 == 0:
        tolerated = (left - 1) // 2
        return (
            f"{change} is an even count: {left} members tolerate {tolerated} failure{'' if tolerated == 1 else 's'}, "
            f"no more than {left - 1} would"
        )
    return None
