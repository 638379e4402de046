"""After the joins: approve each node's kubelet serving certificate (checked against the inventory: the CSR comes
from `system:node:<name>` of an inventory node and asks only for that node's name and addresses), then wait until
every node is Ready. Serving certificates signed by the cluster CA let the apiserver and metrics-server verify the
kubelets (`--kubelet-certificate-authority`), instead of trusting any certificate a kubelet shows."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from inventory.model import Cluster, Host
from roles.control_plane.cluster_ops import (
    KUBECTL,
    ControlPlaneError,
    initialised_masters,
    linux_nodes,
    masters,
    reads_kubeadm_done,
)
from roles.control_plane.defaults import DEFAULTS
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.facts import Fact
from roles.engine.phase import CustomPhase, HostOutcome, facts_on
from roles.engine.transport import ConnectionPool, Transport

SERVING_CERT = "/var/lib/kubelet/pki/kubelet-server-current.pem"
SIGNER = "kubernetes.io/kubelet-serving"
POLL_S = 1.0


@dataclass(frozen=True)
class PendingCSR:
    name: str
    node: str
    sans: frozenset[str]


def pending_serving_csrs(out: str) -> list[PendingCSR]:
    """`kubectl get csr -o json` -> the kubelet-serving CSRs nobody has approved or denied yet. Junk -> []."""
    try:
        items = json.loads(out).get("items") or []
    except (ValueError, AttributeError):
        return []
    found = []
    for item in items:
        spec, status = item.get("spec") or {}, item.get("status") or {}
        user = str(spec.get("username") or "")
        if spec.get("signerName") != SIGNER or status.get("conditions") or not user.startswith("system:node:"):
            continue
        try:
            csr = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
            ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, x509.ExtensionNotFound):
            continue
        sans = {str(v) for v in ext.get_values_for_type(x509.DNSName)}
        sans |= {str(v) for v in ext.get_values_for_type(x509.IPAddress)}
        found.append(
            PendingCSR(str(item.get("metadata", {}).get("name")), user.removeprefix("system:node:"), frozenset(sans))
        )
    return found


def approvable(csr: PendingCSR, allowed: dict[str, set[str]]) -> bool:
    """An inventory node asking only for its own name and addresses."""
    return csr.node in allowed and csr.sans <= allowed[csr.node] and bool(csr.sans)


def ready_nodes(out: str) -> set[str]:
    try:
        items = json.loads(out).get("items") or []
    except (ValueError, AttributeError):
        return set()
    ready = set()
    for item in items:
        conditions = (item.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            ready.add(str(item.get("metadata", {}).get("name")))
    return ready


def node_troubles(out: str) -> dict[str, list[str]]:
    """Each node's conditions that block pods although it may be Ready (DiskPressure, MemoryPressure, PIDPressure,
    NetworkUnavailable: every condition but Ready that is True)."""
    try:
        items = json.loads(out).get("items") or []
    except (ValueError, AttributeError):
        return {}
    troubles: dict[str, list[str]] = {}
    for item in items:
        conditions = (item.get("status") or {}).get("conditions") or []
        bad = sorted(str(c.get("type")) for c in conditions if c.get("type") != "Ready" and c.get("status") == "True")
        if bad:
            troubles[str(item.get("metadata", {}).get("name"))] = bad
    return troubles


def _troubles_text(troubles: dict[str, list[str]]) -> str:
    return "; ".join(f"{node}: {', '.join(kinds)}" for node, kinds in sorted(troubles.items())) or "none"


@dataclass(frozen=True)
class ServingCertPresent(Fact[bool]):
    """The kubelet holds a (non-empty) serving certificate: its CSR was approved."""

    @property
    def key(self) -> str:
        return "kubelet-serving-cert"

    def command(self) -> str:
        return f"[ -s {SERVING_CERT} ] && echo yes; true"

    def parse(self, stdout: str, rc: int) -> bool:
        return stdout.strip() == "yes"


class ServingCertsAndReady(CustomPhase):
    title = "Nodes | Kubelet serving certificates, nodes Ready, cluster DNS up"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return linux_nodes(cluster)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (*facts_on(ctx, linux_nodes, ServingCertPresent()), *reads_kubeadm_done(ctx, masters))

    def _missing_certs(self, cluster: Cluster, pool: ConnectionPool, *, fresh: bool = False) -> list[str]:
        have = pool.read_facts(linux_nodes(cluster), lambda _: ServingCertPresent(), fresh=fresh)
        return [n for n, present in have.items() if not present]

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        missing = self._missing_certs(rc.cluster, pool)
        approve = Command("kubectl certificate approve …", description="approve the kubelet serving certificate")
        return {name: [approve] for name in missing}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        cluster = rc.cluster
        outcomes = {h.name: HostOutcome() for h in linux_nodes(cluster)}
        masters = initialised_masters(cluster, pool)
        if not masters:
            raise ControlPlaneError("no master is initialised: cannot approve certificates or check nodes")
        api = pool.get(masters[0])
        allowed = {h.name: {h.name, str(rc.nodes.ip(h))} for h in linux_nodes(cluster)}
        missing = set(self._missing_certs(cluster, pool))
        approved: dict[str, list[str]] = {}
        deadline = time.monotonic() + DEFAULTS.health_timeout_s
        while True:
            csrs, nodes, dns = _cluster_view(api)
            for csr in pending_serving_csrs(csrs):
                if approvable(csr, allowed):
                    _kubectl(api, f"certificate approve {csr.name}")
                    approved.setdefault(csr.node, []).append(csr.name)
            if missing:
                missing = set(self._missing_certs(cluster, pool, fresh=True))
            not_ready = set(allowed) - ready_nodes(nodes)
            if not missing and not not_ready and dns:
                break
            if time.monotonic() > deadline:
                troubles = node_troubles(nodes)
                disk = any("DiskPressure" in kinds for kinds in troubles.values())
                raise ControlPlaneError(
                    f"after {DEFAULTS.health_timeout_s:.0f} s: not Ready: {sorted(not_ready) or 'none'}; "
                    f"no serving certificate: {sorted(missing) or 'none'}; "
                    f"CoreDNS available: {'yes' if dns else 'no'}; node conditions: {_troubles_text(troubles)}",
                    hint=(
                        "DiskPressure: the kubelet found less free disk than its eviction thresholds (default "
                        "imagefs 15 %, nodefs 10 % of the file system holding /var/lib/containerd and "
                        "/var/lib/kubelet) and runs no new pods; free space, or set "
                        "kubernetes.kubelet.eviction_hard in the inventory"
                        if disk
                        else "kubectl describe node …; journalctl -u kubelet on the node"
                    ),
                )
            time.sleep(POLL_S)
        for node, names in approved.items():
            command = Command(f"{KUBECTL} certificate approve {' '.join(names)}")
            outcomes[node] = HostOutcome(changed=True, commands=(command,))
        return outcomes


def _cluster_view(api: Transport) -> tuple[str, str, bool]:
    """One read of what the phase waits on: the CSRs, the nodes, and whether CoreDNS has an available replica."""
    out = api.run(
        f"{KUBECTL} get csr -o json; echo @@KEELSON@@; {KUBECTL} get nodes -o json; echo @@KEELSON@@; "
        f"{KUBECTL} -n kube-system get deployment coredns -o jsonpath='{{.status.availableReplicas}}'",
        timeout=60,
    ).stdout
    csrs, nodes, dns = [*out.split("@@KEELSON@@"), "", "", ""][:3]
    return csrs, nodes, dns.strip().isdigit() and int(dns.strip()) > 0


def _kubectl(api: Transport, args: str) -> str:
    return api.run(f"{KUBECTL} {args}", timeout=60).stdout
