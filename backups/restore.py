"""Restore every etcd member from one snapshot, losing nothing that was in it, and safe to run again if interrupted.

The restore plan (`roles/plans/restore.py`, its phases in `backups/restore_phases.py`), each step converging when
repeated:
  0. verify the snapshot on the operator side (gzip + etcd's trailing sha256) — a bad file stops here, before the
     plan exists: nothing is connected to, nothing stopped (exit 3);
  1. stage the SAME file on every member, compare its sha256 there, inflate it and run `snapshot status` on it;
  2. stop the control plane on every master: move the static-pod manifests of kube-apiserver,
     kube-controller-manager and kube-scheduler aside and wait until their containers are gone (nothing may read
     or write through the old state once etcd goes back in time: a controller acting on its cache of the newer
     state would delete what the snapshot brings back);
  3. stop etcd, followers first, then the leader;
  4. on each member: `snapshot restore` into `<data_dir>.restore-<id>` with its own name/peer URL and the full
     initial cluster, keep the old data dir as `<data_dir>.pre-restore-<UTC time>`, move the new one in place and
     write a marker `swapped <id>` (a rerun of the same snapshot skips members that carry the marker). From etcd
     3.5.10 on the restore also bumps the revision by BUMP_REVISION and marks it compacted, as Kubernetes' own
     restore procedure asks: every client that watches from a resourceVersion of the newer state (kubelets,
     controllers, CNI daemons) gets "compacted" and lists again instead of waiting for revisions that the
     restored cluster will reuse for other writes;
  5. start etcd on all members together, wait for every member to be healthy and at the snapshot's revision;
  6. put the control plane back, each master's apiserver ready on its own address;
  7. restart the kubelet on every Linux node (Kubernetes' restore procedure: no component keeps stale state);
  8. wait until the API answers through the VIP and every node is Ready; 9. remove the staged files and markers.
<id> is derived from the snapshot's sha256, so an interrupted run and its rerun agree on names and cluster token;
the marker stays until the last step, so a rerun after a failure in 5-8 does not restore the data again.

This module: the names and the per-member scripts, pure (tested as text, run by bash on the members).
"""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass, field

from backups.snapshots import VerifiedSnapshot
from inventory.model import Cluster, Host
from roles.engine.nodes import NodeIPs
from roles.etcd import commands
from roles.etcd.commands import EtcdVersion
from roles.pki.defaults import DEFAULTS as PKI

STAGE_DIR = "/var/lib/keelson/restore"
MANIFESTS = "/etc/kubernetes/manifests"
MANIFESTS_ASIDE = "/etc/kubernetes/manifests.keelson-restore"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")  # static pods, one manifest each
BUMP_REVISION = 1_000_000_000  # what Kubernetes' etcd restore procedure uses: beyond any revision the old state had
BUMP_FROM = EtcdVersion(3, 5, 10)  # etcdutl's --bump-revision/--mark-compacted
STOP_TIMEOUT_S = 120
PRE_RESTORE = ".pre-restore-"  # <data_dir>.pre-restore-<UTC time>: the data dir a restore replaced, kept


@dataclass(frozen=True)
class RestoreSpec:
    """One restore of `snapshot` onto `cluster`: the names every member agrees on, and the scripts they run."""

    cluster: Cluster
    snapshot: VerifiedSnapshot
    stamp: str = field(default_factory=lambda: f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")

    @property
    def restore_id(self) -> str:
        return self.snapshot.db_sha256[:16]

    @property
    def token(self) -> str:
        """A fresh cluster token per snapshot: restored members never mistake an old member for one of theirs."""
        return f"{commands.cluster_token(self.cluster)}-restore-{self.restore_id[:8]}"

    @property
    def staged_gz(self) -> str:
        return f"{STAGE_DIR}/{self.restore_id}.db.gz"

    @property
    def staged_db(self) -> str:
        return f"{STAGE_DIR}/{self.restore_id}.db"

    @property
    def marker(self) -> str:
        return f"{STAGE_DIR}/state"

    @property
    def data_dir(self) -> str:
        return self.cluster.etcd.data_dir.rstrip("/")

    @property
    def old_data_dir(self) -> str:
        return f"{self.data_dir}{PRE_RESTORE}{self.stamp}"

    # -- the scripts, one per step ----------------------------------------------------------------------------
    def stage_script(self, version: EtcdVersion | str) -> str:
        q = shlex.quote
        status = commands.snapshot_status_cmd(version, self.staged_db)
        return f"""set -euo pipefail
test "$(sha256sum < {q(self.staged_gz)} | cut -d' ' -f1)" = {q(self.snapshot.file_sha256)} || {{
  echo "staged snapshot sha256 differs from the operator's copy" >&2; exit 3; }}
if ! test "$(sha256sum < {q(self.staged_db)} 2>/dev/null | cut -d' ' -f1)" = {q(self.snapshot.db_sha256)}; then
  gzip -dc {q(self.staged_gz)} > {q(self.staged_db)}.part && mv -f {q(self.staged_db)}.part {q(self.staged_db)}
fi
test "$(sha256sum < {q(self.staged_db)} | cut -d' ' -f1)" = {q(self.snapshot.db_sha256)}
{status}
"""

    def staged_sha256_script(self) -> str:
        """The staging folder made (0700), then the sha256 of what is staged there already ("" when nothing)."""
        gz = shlex.quote(self.staged_gz)
        return f"mkdir -p -m 0700 {STAGE_DIR} && {{ sha256sum < {gz} 2>/dev/null | cut -d' ' -f1; true; }}"

    def stop_control_plane_script(self) -> str:
        """Move the control plane's static-pod manifests aside ("stopped"; "already-stopped" on a rerun; "absent" on
        a host without them), then wait until the kubelet has stopped their containers."""
        names = " ".join(f"{c}.yaml" for c in CONTROL_PLANE)
        running = f"crictl ps -q --name '^({'|'.join(CONTROL_PLANE)})$' 2>/dev/null"
        late = shlex.quote(f"{', '.join(CONTROL_PLANE)} still running {STOP_TIMEOUT_S} s after their manifests moved")
        return f"""set -eu
state=absent
for m in {names}; do
  if [ -f {MANIFESTS}/$m ]; then mkdir -p {MANIFESTS_ASIDE}; mv -f {MANIFESTS}/$m {MANIFESTS_ASIDE}/$m; state=stopped
  elif [ -f {MANIFESTS_ASIDE}/$m ] && [ $state = absent ]; then state=already-stopped; fi
done
if [ $state != absent ] && command -v crictl >/dev/null; then
  deadline=$(( $(date +%s) + {STOP_TIMEOUT_S} ))
  while [ -n "$({running})" ]; do
    [ "$(date +%s)" -ge "$deadline" ] && {{ echo {late} >&2; exit 75; }}
    sleep 1
  done
fi
echo $state
"""

    def start_control_plane_script(self) -> str:
        """Move the manifests back ("started"; "absent" when none was aside)."""
        names = " ".join(f"{c}.yaml" for c in CONTROL_PLANE)
        return f"""set -eu
state=absent
for m in {names}; do
  if [ -f {MANIFESTS_ASIDE}/$m ]; then mv -f {MANIFESTS_ASIDE}/$m {MANIFESTS}/$m; state=started; fi
done
rmdir {MANIFESTS_ASIDE} 2>/dev/null || true
echo $state
"""

    def restore_command(self, host: Host, version: EtcdVersion | str, nodes: NodeIPs | None = None) -> str:
        """`snapshot restore` of the staged db into a new data dir, as member `host` (`nodes`: the run's node IPs);
        from etcd 3.5.10 on with the revision bumped and marked compacted (the module's docstring says why)."""
        command = commands.snapshot_restore_cmd(
            version,
            self.staged_db,
            host.name,
            commands.initial_cluster(self.cluster, nodes),
            self.token,
            commands.member_peer_url(self.cluster, host, nodes),
            f"{self.data_dir}.restore-{self.restore_id}",
        )
        if EtcdVersion.parse(str(version)) < BUMP_FROM:
            return command
        return f"{command} --bump-revision {BUMP_REVISION} --mark-compacted"

    def restore_script(self, host: Host, version: EtcdVersion | str, nodes: NodeIPs | None = None) -> str:
        q = shlex.quote
        new, old = f"{self.data_dir}.restore-{self.restore_id}", self.old_data_dir
        done = f"swapped {self.restore_id}"
        user, log = PKI.etcd_user, f"{q(STAGE_DIR)}/restore.log"
        restore = self.restore_command(host, version, nodes)
        return f"""set -euo pipefail
if [ "$(cat {q(self.marker)} 2>/dev/null)" = {q(done)} ] && [ -d {q(self.data_dir)}/member ]; then
  echo already-restored; exit 0
fi
rm -rf {q(new)}
{restore} >/dev/null 2>{log} || {{ cat {log} >&2; exit 1; }}
chown -R {user}:{user} {q(new)}
chmod 700 {q(new)}
if [ -e {q(self.data_dir)} ]; then mv {q(self.data_dir)} {q(old)}; echo kept-old {q(old)}; fi
mv {q(new)} {q(self.data_dir)}
echo {q(done)} > {q(self.marker)}
sync
echo restored
"""

    def cleanup_script(self) -> str:
        q = shlex.quote
        return f"rm -f {q(self.staged_gz)} {q(self.staged_db)} {q(self.marker)} {q(STAGE_DIR)}/restore.log\n"
