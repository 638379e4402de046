"""`keelson backup now` and `keelson backup list`: run the installed agent on the members, read its status files.

Over the engine's connections (`roles/engine/transport.py`: strict host keys, sudo, one connection per member), every
member at once; a member that cannot be reached is reported, not fatal.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backups import agent
from backups.role.defaults import DEFAULTS
from inventory.errors import KeelsonError
from inventory.model import Cluster, Host

if TYPE_CHECKING:
    from roles.engine.transport import Transport

AGENT = f"/usr/bin/python3 {DEFAULTS.agent_path} --config {DEFAULTS.config_path}"


class BackupNotInstalled(KeelsonError):
    """The agent is not on the members yet."""


START_ATTEMPTS = 3


def _start_script(run_id: str) -> str:
    """Ask the next run to carry `run_id`, run the unit and wait for it (a oneshot: `systemctl start` returns when it
    finished), then print the latest report. A `systemctl start` that joined a run already under way (the timer's)
    returns that run's report, without our id: the unit is started again, up to START_ATTEMPTS times. An unclaimed
    request (the agent never ran) is removed, so no later timer run carries it."""
    q = shlex.quote
    status, request = q(DEFAULTS.status_dir), q(f"{DEFAULTS.status_dir}/{agent.RUN_REQUEST}")
    last, rid = q(f"{DEFAULTS.status_dir}/{agent.LAST_RUN}"), q(run_id)
    return (
        f"test -f {q(DEFAULTS.config_path)} || {{ echo 'backup agent not installed' >&2; exit 90; }}\n"
        f"install -d -m 0700 {status} && printf '%s\\n' {rid} > {request}.tmp && mv -f {request}.tmp {request}"
        " || exit 91\n"
        f"for attempt in $(seq {START_ATTEMPTS}); do\n"
        f"  systemctl start {DEFAULTS.service}; rc=$?\n"
        f"  grep -qF -- {rid} {last} 2>/dev/null && break\n"
        "done\n"
        f"rm -f {request}\n"
        f"cat {last} 2>/dev/null || echo '{{}}'\n"
        "exit $rc\n"
    )


def _list_script(offsite: bool) -> str:
    flag = " --offsite" if offsite else ""
    # the env file holds the S3 credentials: read into this shell only, never printed
    return f"set -a; [ -r {DEFAULTS.env_path} ] && . {DEFAULTS.env_path}; set +a; {AGENT} list{flag}"


@dataclass
class BackupNowResult:
    run_id: str = ""  # what this `backup now` asked every member's run to carry in its report
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # member -> the agent's report of THIS run
    unreachable: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # member -> why its unit failed

    @property
    def taken_by(self) -> list[str]:
        return [m for m, r in self.runs.items() if r.get("outcome") == "snapshot"]

    @property
    def ok(self) -> bool:
        return bool(self.taken_by) and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "run_id": self.run_id, "taken_by": self.taken_by, "runs": self.runs,
                "unreachable": self.unreachable, "failed": self.failed}  # fmt: skip

    def describe(self) -> str:
        lines = []
        for member, run in sorted(self.runs.items()):
            if run.get("outcome") == "snapshot":
                lines.append(f"{member}: took {run['snapshot']} (revision {run['revision']}, {run['total_keys']} keys, "
                             f"{run['duration_s']} s)")  # fmt: skip
                lines += [f"  copied to {where}" for where in run.get("copies", {}).values()]
                for target, names in run.get("pruned", {}).items():
                    if names:
                        lines.append(f"  pruned {len(names)} old snapshot{'s' if len(names) != 1 else ''} at {target}")
            else:
                lines.append(f"{member}: {run.get('outcome', 'no report')} — {run.get('reason', '')}".rstrip(" —"))
            lines += [f"  FAILED {target}: {error}" for target, error in run.get("errors", {}).items()]
        lines += [f"{m}: failed: {why}" for m, why in sorted(self.failed.items()) if m not in self.runs]
        lines += [f"{m}: unreachable ({why})" for m, why in sorted(self.unreachable.items())]
        if not self.taken_by:
            lines.append("no member took a snapshot")
        return "\n".join(lines)


def run_now(members: Members, run_id: str = "") -> BackupNowResult:
    """Start the unit on every member and keep, per member, only the report of the run that carries `run_id`."""
    run_id = run_id or new_run_id()
    result = BackupNowResult(run_id=run_id, unreachable=dict(members.down))

    def start(name: str, transport: Transport) -> None:
        out = transport.run(_start_script(run_id), timeout=1800)
        if out.rc == 90:
            raise BackupNotInstalled(f"{name}: the backup agent is not installed", hint="run `keelson apply` first")
        try:
            report = json.loads(out.stdout[out.stdout.find("{") :]) if "{" in out.stdout else {}
        except ValueError:
            report = {}
        unit = DEFAULTS.service
        if report and "run_id" not in report:
            result.failed[name] = "the installed backup agent reports no run id: run `keelson apply` to update it"
            return
        if report.get("run_id") != run_id:  # the agent never wrote a report of this run: an older one is not it
            result.failed[name] = f"no report from this run ({unit} exited {out.rc}; see journalctl -u {unit})"
            return
        result.runs[name] = report
        if out.rc != 0:
            errors = "; ".join(f"{k}: {v}" for k, v in report.get("errors", {}).items())
            result.failed[name] = errors or f"{unit} exited {out.rc} (journalctl -u {unit})"

    members.each(start)
    return result


def new_run_id() -> str:
    return uuid.uuid4().hex


def backup_now(cluster: Cluster) -> BackupNowResult:
    with connected(cluster) as members:
        return run_now(members)


# -- list ---------------------------------------------------------------------------------------------------------


@dataclass
class BackupListing:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # member -> the agent's `list` JSON
    unreachable: dict[str, str] = field(default_factory=dict)

    def targets(self) -> dict[str, dict[str, Any]]:
        """Per target: the newest success and the newest failure over all members (with the member's name)."""
        out: dict[str, dict[str, Any]] = {}
        for member, listing in sorted(self.members.items()):
            for target_id, status in listing.get("status", {}).items():
                entry = out.setdefault(target_id, {"target": status.get("target", target_id),
                                                   "last_success": None, "last_failure": None})  # fmt: skip
                for kind in ("last_success", "last_failure"):
                    new = status.get(kind)
                    if new and (entry[kind] is None or new["time"] > entry[kind]["time"]):
                        entry[kind] = {**new, "member": member}
        return out

    @property
    def ok(self) -> bool:
        """At least one member answered (with every member unreachable there is nothing to list)."""
        return bool(self.members)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "targets": self.targets(), "members": self.members, "unreachable": self.unreachable}

    def describe(self) -> str:
        lines = ["targets (newest over all members):"]
        for target_id, entry in sorted(self.targets().items()):
            lines.append(f"  {entry['target']} [{target_id}]")
            ok, bad = entry["last_success"], entry["last_failure"]
            where = (ok or {}).get("location") or (ok or {}).get("snapshot", "")
            lines.append(
                f"    last success: {ok['time']} on {ok['member']} {where}" if ok else "    last success: never"
            )
            if bad:
                lines.append(f"    last failure: {bad['time']} on {bad['member']}: {bad.get('error', '')}")
        for member, listing in sorted(self.members.items()):
            local = listing.get("local", [])
            lines.append(f"{member}: {len(local)} local snapshot(s)")
            lines += [f"  {s['name']} ({s['size']} bytes)" for s in local]
            for target_id, items in listing.get("offsite", {}).items():
                if isinstance(items, dict):
                    lines.append(f"  offsite {target_id}: cannot list: {items.get('error')}")
                    continue
                lines.append(f"  offsite {target_id}: {len(items)} snapshot(s)")
                lines += [f"    {s['location']} ({s['size']} bytes)" for s in items]
        lines += [f"{m}: unreachable ({why})" for m, why in sorted(self.unreachable.items())]
        return "\n".join(lines)


def run_list(members: Members, offsite: bool) -> BackupListing:
    listing = BackupListing(unreachable=dict(members.down))
    first = next(iter(members.transports), None)  # offsite targets are the same for every member: listed once

    def read(name: str, transport: Transport) -> None:
        out = transport.run(_list_script(offsite and name == first), timeout=120)
        if out.rc != 0:
            listing.unreachable[name] = (out.stderr or out.stdout).strip()[-300:] or f"exit {out.rc}"
            return
        listing.members[name] = json.loads(out.stdout)

    members.each(read)
    return listing


def backup_list(cluster: Cluster, *, offsite: bool = True) -> BackupListing:
    with connected(cluster) as members:
        return run_list(members, offsite)


# -- the members, over the engine's connections ----------------------------------------------------------------


@dataclass
class Members:
    """The etcd members that answered (their connections, in inventory order) and why the others did not."""

    hosts: list[Host]
    transports: dict[str, Transport]
    down: dict[str, str]

    def each(self, action: Callable[[str, Transport], None]) -> None:
        """`action` on every member at once; once all have finished, the first error is raised as it is."""
        from roles.engine.parallel import on_hosts

        results = on_hosts(self.hosts, lambda h: action(h.name, self.transports[h.name]))
        errors = [e for e in results.values() if isinstance(e, KeelsonError)]
        if errors:
            raise errors[0]


@contextmanager
def connected(cluster: Cluster) -> Iterator[Members]:
    """Connections to every etcd member that answers, closed on exit."""
    from roles.engine.parallel import on_hosts
    from roles.engine.transport import ConnectionPool

    pool = ConnectionPool(cluster)
    try:
        results = on_hosts(cluster.etcd_members, pool.get)
        up = {name: t for name, t in results.items() if not isinstance(t, KeelsonError)}
        down = {name: e.message for name, e in results.items() if isinstance(e, KeelsonError)}
        yield Members([h for h in cluster.etcd_members if h.name in up], up, down)
    finally:
        pool.close()
