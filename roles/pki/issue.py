"""The PKI's operator-side phases: the etcd CA and certificates, the Kubernetes CAs and service-account key."""

from __future__ import annotations

from inventory.model import Cluster, Host
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.phase import CustomPhase, HostOutcome
from roles.engine.transport import ConnectionPool
from roles.pki import kubernetes as k8s_pki
from roles.pki.store import PKIReport, ensure_etcd_pki, plan_etcd_pki
from roles.state import StateDir


def members_and_masters(cluster: Cluster) -> list[Host]:
    seen = {h.name: h for h in cluster.etcd_members}
    for h in cluster.masters:
        seen.setdefault(h.name, h)
    return list(seen.values())


class IssueEtcdCertificates(CustomPhase):
    """Operator side: make the CA once and (re-)issue what no longer fits the inventory. Touches no host."""

    title = "PKI | Issue etcd certificates (operator side)"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return members_and_masters(cluster)

    @staticmethod
    def _per_host(cluster: Cluster, report: PKIReport) -> dict[str, list[Command]]:
        out: dict[str, list[Command]] = {}
        shared = [f"{ident} ({why})" for ident, why in report.issued.items() if "/" not in ident]
        if report.ca_created:
            shared.insert(0, "etcd CA (new)")
        for host in members_and_masters(cluster):
            own = [f"{ident} ({why})" for ident, why in report.issued.items() if ident.startswith(f"{host.name}/")]
            what = own + shared
            if what:
                out[host.name] = [
                    Command(":", description="operator side: issue " + ", ".join(what), summary_only=True)
                ]
        return out

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return self._per_host(rc.cluster, plan_etcd_pki(rc.cluster, StateDir(rc.state_dir), nodes=rc.nodes))

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        planned = self._per_host(rc.cluster, ensure_etcd_pki(rc.cluster, StateDir(rc.state_dir), nodes=rc.nodes))
        return {
            h.name: HostOutcome(changed=h.name in planned, commands=tuple(planned.get(h.name, ())))
            for h in self.hosts(rc.cluster)
        }


class IssueKubernetesPKI(CustomPhase):
    """Operator side: the cluster CA, the front-proxy CA and the service-account key, each made once."""

    title = "PKI | Kubernetes CA (operator side)"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return cluster.masters

    @staticmethod
    def _planned(cluster: Cluster, made: bool) -> dict[str, list[Command]]:
        if not made:
            return {}
        note = Command(
            ":", description="operator side: make the Kubernetes CA, front-proxy CA, SA key", summary_only=True
        )
        return {m.name: [note] for m in cluster.masters}

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return self._planned(rc.cluster, k8s_pki.load(StateDir(rc.state_dir)) is None)

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        state = StateDir(rc.state_dir)
        planned = self._planned(rc.cluster, k8s_pki.load(state) is None)
        k8s_pki.ensure(state)
        return {
            m.name: HostOutcome(changed=m.name in planned, commands=tuple(planned.get(m.name, ())))
            for m in rc.cluster.masters
        }
