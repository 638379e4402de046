"""`keelson backup now` and `keelson backup list`: run the installed agent on the members, read its status files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from backups import config
from backups.remote import HostShell, on_all
from inventory.errors import KeelsonError
from inventory.model import Cluster

AGENT = f"/usr/bin/python3 {config.AGENT_PATH} --config {config.CONFIG_PATH}"


class BackupNotInstalled(KeelsonError):
    """The agent is not on the members yet."""


def _start_script() -> str:
    """Run the unit now and wait for it (a oneshot: `systemctl start` returns when it finished), then its report."""
    return (
        f"test -f {config.CONFIG_PATH} || {{ echo 'backup agent not installed' >&2; exit 90; }}\n"
        f"systemctl start {config.SERVICE}; rc=$?\n"
        f"cat {config.STATUS_DIR}/last-run.json 2>/dev/null || echo '{{}}'\n"
        "exit $rc\n"
    )


def _list_script(offsite: bool) -> str:
    flag = " --offsite" if offsite else ""
    # the env file holds the S3 credentials: read into this shell only, never printed
    return f"set -a; [ -r {config.ENV_PATH} ] && . {config.ENV_PATH}; set +a; {AGENT} list{flag}"


@dataclass
class BackupNowResult:
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # member -> the agent's run report
    unreachable: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # member -> why its unit failed

    @property
    def taken_by(self) -> list[str]:
        return [m for m, r in self.runs.items() if r.get("outcome") == "snapshot"]

    @property
    def ok(self) -> bool:
        return bool(self.taken_by) and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "taken_by": self.taken_by, "runs": self.runs, "unreachable": self.unreachable,
                "failed": self.failed}  # fmt: skip

    def describe(self) -> str:
        lines = []
        for member, run in sorted(self.runs.items()):
            if run.get("outcome") == "snapshot":
                lines.append(f"{member}: took {run['snapshot']} (revision {run['revision']}, {run['total_keys']} keys, "
                             f"{run['duration_s']} s)")  # fmt: skip
                lines += [f"  copied to {where}" for where in run.get("copies", {}).values()]
            else:
                lines.append(f"{member}: {run.get('outcome', 'no report')} — {run.get('reason', '')}".rstrip(" —"))
            lines += [f"  FAILED {target}: {error}" for target, error in run.get("errors", {}).items()]
        lines += [f"{m}: unit failed: {why}" for m, why in sorted(self.failed.items()) if m not in self.runs]
        lines += [f"{m}: unreachable ({why})" for m, why in sorted(self.unreachable.items())]
        if not self.taken_by:
            lines.append("no member took a snapshot")
        return "\n".join(lines)


def run_now(shells: list[HostShell], unreachable: dict[str, str] | None = None) -> BackupNowResult:
    result = BackupNowResult(unreachable=dict(unreachable or {}))

    def start(shell: HostShell) -> None:
        out = shell.sh(_start_script(), timeout=1800)
        if out.rc == 90:
            raise BackupNotInstalled(
                f"{shell.name}: the backup agent is not installed", hint="run `keelson apply` first"
            )
        try:
            report = json.loads(out.stdout[out.stdout.find("{") :]) if "{" in out.stdout else {}
        except ValueError:
            report = {}
        if report:
            result.runs[shell.name] = report
        if out.rc != 0:
            errors = "; ".join(f"{k}: {v}" for k, v in report.get("errors", {}).items())
            result.failed[shell.name] = errors or f"{config.SERVICE} exited {out.rc} (journalctl -u {config.SERVICE})"

    on_all(shells, start)
    return result


def backup_now(cluster: Cluster) -> BackupNowResult:
    from backups.connect import reachable_shells
    from roles.engine.transport import ConnectionPool

    pool = ConnectionPool(cluster)
    try:
        shells, down = reachable_shells(pool, cluster.etcd_members)
        return run_now(shells, down)
    finally:
        pool.close()


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

    def as_dict(self) -> dict[str, Any]:
        return {"targets": self.targets(), "members": self.members, "unreachable": self.unreachable}

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


def run_list(shells: list[HostShell], offsite: bool, unreachable: dict[str, str] | None = None) -> BackupListing:
    listing = BackupListing(unreachable=dict(unreachable or {}))
    first = shells[0].name if shells else None

    def read(shell: HostShell) -> None:
        out = shell.sh(_list_script(offsite and shell.name == first), timeout=120)
        if out.rc != 0:
            listing.unreachable[shell.name] = (out.stderr or out.stdout).strip()[-300:] or f"exit {out.rc}"
            return
        listing.members[shell.name] = json.loads(out.stdout)

    on_all(shells, read)
    return listing


def backup_list(cluster: Cluster, *, offsite: bool = True) -> BackupListing:
    from backups.connect import reachable_shells
    from roles.engine.transport import ConnectionPool

    pool = ConnectionPool(cluster)
    try:
        shells, down = reachable_shells(pool, cluster.etcd_members)
        return run_list(shells, offsite, down)
    finally:
        pool.close()
