"""The "PKI | …" phases, in order: hosts trust our CA, certificates issued on the operator side, then uploaded."""

from __future__ import annotations

from inventory.model import Cluster, Host
from roles.engine.phase import AnyPhase, Phase, of_role
from roles.pki.issue import IssueEtcdCertificates, IssueKubernetesPKI
from roles.pki.steps import ca_check, kubernetes_files, master_files, member_files


def etcd_members(cluster: Cluster) -> list[Host]:
    return cluster.etcd_members


def masters(cluster: Cluster) -> list[Host]:
    return cluster.masters


def phases(cluster: Cluster) -> list[AnyPhase]:
    return of_role(
        "pki",
        [
            Phase("PKI | Hosts trust our etcd CA", hosts=etcd_members, steps=[ca_check()]),
            IssueEtcdCertificates(),
            Phase("PKI | Upload etcd certificates", hosts=etcd_members, steps=member_files()),
            Phase("PKI | Upload apiserver etcd client certificate", hosts=masters, steps=master_files()),
            IssueKubernetesPKI(),
            Phase("PKI | Upload the Kubernetes CA and service-account key", hosts=masters, steps=kubernetes_files()),
        ],
    )
