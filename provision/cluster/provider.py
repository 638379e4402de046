"""The dynamic provider behind every cluster resource: it runs a group of the apply plan's phases through the same
runner as `keelson apply` (roles/engine/runner.py), on the resource's hosts only.

- check: the inventory is validated by keelson's own loader and rules (a failure names the field);
- diff: the digest of what the group's phases would do (fingerprint.py) against the one recorded at the last run;
  a resource whose digest is unchanged is left alone, whatever else changed in the inventory;
- create / update: the phases run (`--only` the group's phases, `--hosts` the resource's hosts); a failed host
  fails the resource with the runner's errors; the operator state the phases leave is the resource's secret output;
- read (`pulumi refresh`): the phases as a dry run; a host that drifted marks the resource for the next `up`;
- delete: a worker's resource takes the node out of the cluster first (remove.py: the hook for the remove plan).

The provider holds no connection, lock or file between calls (it is pickled into the stack): each call opens what
it needs in a private folder and closes it.
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import sys
import threading
from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown

from inventory.errors import KeelsonError
from provision.cluster import groups
from provision.cluster.workdir import Access, StateFiles, cluster_from, merged, read_state, run_folder

# The engine and the roles are imported where they are used: the program process only pickles this provider (and
# starts faster); the provider process imports them on its first call, or earlier in the background (warm_up).

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the wire form of a value not known yet (pulumi.runtime.rpc)
INPUTS = ("group", "hosts", "inventory", "access", "state", "chain")


@functools.cache
def warm_up() -> None:
    """Start importing the roles in a background thread of the dynamic provider process, at its first call (the
    machines' or a cluster resource's check): a resource's first diff needs them (~0.2-0.4 s of imports), and until
    it comes the process mostly waits on the engine and the program. The first diff then takes the imports done.
    The process also exits without a last garbage collection (freeze_at_exit), and the dataclasses the roles define
    take their code from keelson's cache (keelson/codecache.py, as the CLI does: ~80 ms less CPU for the roles'
    import here, 145-245 -> 112-184 ms at load ~2)."""
    from keelson.codecache import install

    freeze_at_exit()
    install()
    threading.Thread(target=_import_roles, name="keelson-warm-up", daemon=True).start()


@functools.cache
def freeze_at_exit() -> None:
    """At this process's exit, move every object to the garbage collector's permanent generation (gc.freeze): the
    interpreter's shutdown then clears the modules without traversing them all again in its collections.

    The engine waits for the program to end, then stops the dynamic provider and waits for it, at the end of every
    `pulumi up`: with the SDK, pydantic and the roles imported, each shutdown took 0.2-0.45 s, mostly those
    collections (~0.02 s with this). What the exit does is as before (atexit handlers, threads joined, the standard
    streams flushed, the exit code) but for garbage in reference cycles, left unfinalized: nothing of keelson's holds
    a file or connection past a call. Used by the program (stack/program.py) and by the dynamic provider's process
    (warm_up, at its first call)."""
    atexit.register(gc.freeze)


def _import_roles() -> None:
    import provision.cluster.fingerprint  # noqa: F401 (the apply plan and every role: what a diff renders)


@functools.lru_cache(maxsize=4)
def validated(inventory_json: str) -> tuple[str | None, frozenset[str]]:
    """The check's verdict on an inventory (its JSON, keys sorted): the loader's error, or its hosts' names. Every
    resource of the cluster checks the same inventory, one after another in the engine (a parse and its rules: 2-5 ms
    each, 19 checks in a no-op `pulumi up` of the lab stack): the first check parses it, the others reuse the
    verdict; a changed inventory is another key, parsed again."""
    try:
        cluster = cluster_from(json.loads(inventory_json))
    except KeelsonError as exc:
        return str(exc), frozenset()
    return None, frozenset(h.name for h in cluster.hosts)


class PhaseGroupFailed(Exception):
    """The phases failed on a host: the message is the runner's, per host (no traceback is needed to act on it)."""


def has_unknown(value: Any) -> bool:
    """Whether a value (at any depth) is not known yet: in a preview, what a resource being created will output."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, Mapping):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_unknown(v) for v in value)
    return False


def _own_state(olds: Mapping[str, Any]) -> StateFiles | None:
    own = olds.get("state")
    return dict(own) if isinstance(own, Mapping) else None


def digest(props: Mapping[str, Any], own: StateFiles | None) -> dict[str, Any]:
    """The fingerprint of the resource's phases with these inputs, rendered in a private folder laid out as a run's
    (the key, known_hosts and state where a run has them), so a look and a run see the same; no host is contacted."""
    from provision.cluster.fingerprint import fingerprint

    group = groups.by_name(str(props["group"]))
    access = Access.from_props(props["access"])
    with run_folder(access, props["inventory"], merged(props.get("state"), own)) as (cluster, state_dir):
        return fingerprint(cluster, group, props["hosts"], state_dir)


def run_group(props: Mapping[str, Any], own: StateFiles | None, dry_run: bool = False) -> dict[str, Any]:
    """Run the group's phases on the resource's hosts; the outputs: inputs echoed (delete needs them), fingerprint,
    which hosts changed (or, in a dry run, would), and (for the cluster-wide chain) the operator state afterwards."""
    from provision.cluster.fingerprint import fingerprint
    from roles.engine import events as ev
    from roles.engine.context import RunContext
    from roles.engine.runner import run_plan
    from roles.plans import apply

    group = groups.by_name(str(props["group"]))
    hosts = [str(h) for h in props["hosts"]]
    state = merged(props.get("state"), own)
    failures: list[str] = []

    def collect(event: ev.Event) -> None:
        if isinstance(event, ev.HostFailed):
            failures.append(f"{event.host}: {event.phase}: {event.error}")

    with run_folder(Access.from_props(props["access"]), props["inventory"], state) as (cluster, state_dir):
        plan = apply.plan(cluster)
        titles = frozenset(p.title for p in group.phases(plan.phases))
        rc = RunContext(cluster, state_dir, dry_run=dry_run, only=titles, host_names=frozenset(hosts), events=collect)
        report = run_plan(plan, rc)
        if not report.ok:
            raise PhaseGroupFailed(
                f"keelson {group.name} phases failed ({', '.join(sorted(titles))}):\n  " + "\n  ".join(failures)
            )
        after = read_state(state_dir)
        printed = fingerprint(cluster, group, hosts, state_dir)
    outs: dict[str, Any] = {k: props[k] for k in INPUTS if k in props}
    outs.update(printed, changed=sorted(report.changed_hosts))
    if props.get("chain"):
        outs["state"] = after
    return outs


class PhaseGroupProvider(ResourceProvider):
    """keelson's role phases as a Pulumi resource (see the module docstring)."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        warm_up()
        failures: list[CheckFailure] = []
        if not has_unknown(news.get("inventory")):
            error, names = validated(json.dumps(news["inventory"], sort_keys=True))
            if error is not None:
                failures.append(CheckFailure("inventory", error))
            else:
                unknown = sorted(set(news.get("hosts") or []) - names)
                if unknown:
                    failures.append(CheckFailure("hosts", f"not in the inventory: {', '.join(unknown)}"))
        try:
            groups.by_name(str(news.get("group")))
        except KeyError as exc:
            failures.append(CheckFailure("group", str(exc)))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if has_unknown({k: news.get(k) for k in INPUTS}):
            return DiffResult(changes=True, replaces=[], stables=[], delete_before_replace=False)
        printed = digest(news, _own_state(olds))
        return DiffResult(
            changes=printed["fingerprint"] != olds.get("fingerprint"),
            replaces=[],
            stables=[],
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = _run(props, None)
        suffix = "-".join(str(h) for h in props["hosts"]) if groups.by_name(props["group"]).per_host else "cluster"
        return CreateResult(id_=f"{props['group']}-{suffix}", outs=outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_run(news, _own_state(olds)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """`pulumi refresh`: the group's phases as a dry run (`keelson plan --only … --hosts …`). Hosts that drifted
        from what the phases make mark the resource stale, so the next `pulumi up` runs it again."""
        if "fingerprint" not in props or "access" not in props:
            return ReadResult(id_=id_, outs=props)  # nothing recorded yet to compare against
        try:
            looked = run_group(props, _own_state(props), dry_run=True)
        except (KeelsonError, PhaseGroupFailed) as exc:
            raise PhaseGroupFailed(f"refresh: {exc}") from None
        drifted = looked["changed"]
        outs = {**props, "drifted": drifted}
        if drifted:
            outs["fingerprint"] = f"drifted: {', '.join(drifted)}"
        return ReadResult(id_=id_, outs=outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        group = groups.by_name(str(props["group"]))
        if not group.drains:
            return  # the machines go with their source; nothing of the cluster-wide phases is taken back
        inventory = props["inventory"]
        hosts = [h for h in props["hosts"] if any(x.get("name") == h and "worker" in x.get("roles", []) for x in
                                                   inventory.get("hosts", []))]  # fmt: skip
        if not hosts:
            return
        from provision.cluster.remove import remove_from_cluster

        with run_folder(Access.from_props(props["access"]), inventory, props.get("state") or {}) as (cluster, state):
            try:
                print(remove_from_cluster(cluster, hosts, state), file=sys.stderr)
            except KeelsonError as exc:
                raise PhaseGroupFailed(str(exc)) from None


def _run(props: Mapping[str, Any], own: StateFiles | None) -> dict[str, Any]:
    try:
        return run_group(props, own)
    except KeelsonError as exc:  # an inventory or state problem found before any host was touched
        raise PhaseGroupFailed(str(exc)) from None
