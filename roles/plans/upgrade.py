"""The upgrade: `keelson upgrade --to VERSION`, one ordered list of phases (what each does: roles/upgrade/).

Preflight (skew, nodes Ready, etcd healthy, target artifacts, a verified backup) → Stage (the target's kubeadm and
kubectl, and its images when air-gapped, on every node: nothing restarts) → first master (`kubeadm upgrade apply`) →
the other masters, then the workers (`kubeadm upgrade node`), one node at a time, drained, health-gated through the
VIP, uncordoned → kubeadm's configuration files at the new version (so that `keelson apply` then changes nothing).

The inventory's kubernetes.version must already say the target: it is what `keelson apply` installs, so the two
never disagree (refused otherwise, before any connection).
"""

from __future__ import annotations

from inventory.errors import KeelsonError
from inventory.model import Cluster
from provision.artifacts.catalog import normalise, release
from roles import upgrade
from roles.engine.phase import Plan
from roles.upgrade.preflight import Options, UpgradeRefused
from roles.upgrade.versions import Version


def target_of(cluster: Cluster, to: str) -> Version:
    """The `--to` version, which must be the inventory's kubernetes.version and a release keelson can build."""
    wanted = normalise(to)
    version = Version.parse(wanted)
    if version is None or wanted != str(version):
        raise UpgradeRefused(f"--to {to!r} is not a Kubernetes version (e.g. v1.37.2)")
    inventory = cluster.kubernetes.release_version
    if wanted != inventory:
        raise UpgradeRefused(
            f"--to {wanted} but the inventory says kubernetes.version: {inventory}",
            hint=f"set kubernetes.version: {wanted} in the inventory first (it is what keelson apply installs), then "
            "rerun: the inventory and the cluster must not disagree",
        )
    try:
        release(wanted)
    except KeelsonError as exc:
        raise UpgradeRefused(str(exc)) from None
    return version


def plan(cluster: Cluster, to: str, options: Options | None = None, *, drain_timeout_s: int = 300) -> Plan:
    target = target_of(cluster, to)
    phases = upgrade.phases(cluster, target, options, drain_timeout_s)
    return Plan("upgrade", phases, notes=(f"upgrade to {target} (kubernetes.version in the inventory)",))
