"""After the joins: approve each node's kubelet serving certificate (checked against the inventory: the CSR comes
from `system:node:<name>` of an inventory node and asks only for that node's name and addresses), then wait until
every node is Ready. Serving certificates signed by the cluster CA let the apiserver and metrics-server verify the
kubelets (`--kubelet-certificate-authority`), instead of trusting any certificate a kubelet shows."""

from __future__ import annotations

import base64
import json
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from inventory.model import Cluster, Host
from roles.control_plane.cluster_ops import (
    KUBECTL,
    RECORD,
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

q = shlex.quote
SERVING_CERT = "/var/lib/kubelet/pki/kubelet-server-current.pem"
SIGNER = "kubernetes.io/kubelet-serving"
POLL_S = 1.0


@dataclass(frozen=True)
class PendingCSR:
    name: str
    node: str
    sans: frozenset[str]


def _items(out: str) -> list[dict[str, Any]]:
    """The `items` of kubectl's JSON list; [] for junk."""
    try:
        items = json.loads(out).get("items") or []
    except (ValueError, AttributeError):
        return []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def pending_serving_csrs(out: str) -> list[PendingCSR]:
    """`kubectl get csr -o json` -> the kubelet-serving CSRs nobody has approved or denied yet. Junk -> []."""
    return _pending(_items(out))


def _pending(items: list[dict[str, Any]]) -> list[PendingCSR]:
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
    return _ready(_items(out))


def _ready(items: list[dict[str, Any]]) -> set[str]:
    ready = set()
    for item in items:
        conditions = (item.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            ready.add(str(item.get("metadata", {}).get("name")))
    return ready


def node_troubles(out: str) -> dict[str, list[str]]:
    """Each node's conditions that block pods although it may be Ready (DiskPressure, MemoryPressure, PIDPressure,
    NetworkUnavailable: every condition but Ready that is True)."""
    return _troubles(_items(out))


def _troubles(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    troubles: dict[str, list[str]] = {}
    for item in items:
        conditions = (item.get("status") or {}).get("conditions") or []
        bad = sorted(str(c.get("type")) for c in conditions if c.get("type") != "Ready" and c.get("status") == "True")
        if bad:
            troubles[str(item.get("metadata", {}).get("name"))] = bad
    return troubles


@dataclass(frozen=True)
class ApiView:
    """What a no-op asks the API, in one read: for this phase the pending serving CSRs, the Ready nodes (and the
    conditions that keep pods off nodes) and whether CoreDNS has an available replica; for the manifests' phases
    (roles/control_plane/manifests.py) what keelson last applied (manifest name -> sha256, its record ConfigMap)."""

    pending: tuple[PendingCSR, ...] = ()
    ready: frozenset[str] = frozenset()
    troubles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dns: bool = False
    applied: Mapping[str, str] = field(default_factory=dict)


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next((i for i in items if (i.get("metadata") or {}).get("name") == name), {})


def parse_view(out: str) -> ApiView:
    """`kubectl -n kube-system get csr,nodes,deployments,configmaps -o json` (one list of all four kinds) -> ApiView;
    junk or an API that did not answer -> nothing pending, nothing Ready, no DNS, nothing applied."""
    return _view(_items(out))


def parse_lists(out: str) -> ApiView:
    """The API's list responses one after the other (`ClusterView`'s reads: a `NodeList` whose items carry no kind,
    …) -> ApiView, as `parse_view` reads kubectl's one list of all four kinds. Junk, a cut-off answer, an error -> what
    parses before it."""
    items: list[dict[str, Any]] = []
    decoder, at = json.JSONDecoder(), 0
    while True:
        at = len(out) - len(out[at:].lstrip())
        try:
            doc, at = decoder.raw_decode(out, at)
        except ValueError:
            break
        listed = doc.get("items") if isinstance(doc, dict) else None
        if isinstance(listed, list):  # an item's kind is its list's (kubectl's own List: each item says)
            kind = str(doc.get("kind") or "").removesuffix("List")
            items += [{**i, "kind": i.get("kind") or kind} for i in listed if isinstance(i, dict)]
    return _view(items)


def _view(items: list[dict[str, Any]]) -> ApiView:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_kind.setdefault(str(item.get("kind")), []).append(item)
    available = (_named(by_kind.get("Deployment", []), "coredns").get("status") or {}).get("availableReplicas")
    record = _named(by_kind.get("ConfigMap", []), RECORD).get("data") or {}
    nodes = by_kind.get("Node", [])
    return ApiView(
        pending=tuple(_pending(by_kind.get("CertificateSigningRequest", []))),
        ready=frozenset(_ready(nodes)),
        troubles=tuple((node, tuple(kinds)) for node, kinds in sorted(_troubles(nodes).items())),
        dns=isinstance(available, int) and available > 0,
        applied={k: v for k, v in record.items() if isinstance(v, str)} if isinstance(record, dict) else {},
    )


# What ClusterView reads: the CSRs and nodes (cluster-scoped), kube-system's deployments and config maps.
API_READS = (
    "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    "/api/v1/nodes",
    "/apis/apps/v1/namespaces/kube-system/deployments",
    "/api/v1/namespaces/kube-system/configmaps",
)


@dataclass(frozen=True)
class ClusterView(Fact[ApiView]):
    """`ApiView` from one read of the API on a master: the CSRs and nodes (cluster-scoped), kube-system's
    deployments (CoreDNS's among them) and config maps (keelson's record among them), as the admin kubeconfig
    (its server and credentials) — what `kubectl -n kube-system get csr,nodes,deployments,configmaps -o json` reads.
    curl, not kubectl: kubectl costs ~0.12 s of the host's CPU before it asks anything (the multi-call Kubernetes
    binary starting), on the master whose batch is a no-op's longest; curl's four reads over one TLS connection
    ~0.02 s. The kubeconfig is read by the shell, its PEMs written to a private folder for curl and removed. A down
    API answers an empty view within the request timeout, as does a master without the kubeconfig."""

    kubeconfig: str = DEFAULTS.admin_conf

    @property
    def key(self) -> str:
        return "api-view"

    def command(self) -> str:
        urls = " ".join(f'"$s"{q(path)}' for path in API_READS)
        return (
            "s= a= c= p=; while read -r k v; do case $k in server:) s=$v;; certificate-authority-data:) a=$v;; "
            f"client-certificate-data:) c=$v;; client-key-data:) p=$v;; esac; done < {q(self.kubeconfig)}; "
            "case $s in \\\"*\\\"|\\'*\\') s=${s:1:${#s}-2};; esac; "  # a quoted server
            'if [ -n "$s" ] && [ -n "$a" ] && [ -n "$c" ] && [ -n "$p" ] && d=$(umask 077; mktemp -d); then '
            'base64 -d <<< "$a" > "$d/ca" && base64 -d <<< "$c" > "$d/crt" && base64 -d <<< "$p" > "$d/key" && '
            'curl --silent --fail --max-time 10 --cacert "$d/ca" --cert "$d/crt" --key "$d/key" '
            f"--write-out '\\n' {urls} 2>/dev/null; rm -rf \"$d\"; fi; true"
        )

    def parse(self, stdout: str, rc: int) -> ApiView:
        return parse_lists(stdout)


def _troubles_text(troubles: Sequence[tuple[str, Sequence[str]]]) -> str:
    return "; ".join(f"{node}: {', '.join(kinds)}" for node, kinds in sorted(troubles)) or "none"


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
        return (
            *facts_on(ctx, linux_nodes, ServingCertPresent()),
            *facts_on(ctx, view_master, ClusterView()),
            *reads_kubeadm_done(ctx, masters),
        )

    def _missing_certs(self, cluster: Cluster, pool: ConnectionPool, *, fresh: bool = False) -> list[str]:
        have = pool.read_facts(linux_nodes(cluster), lambda _: ServingCertPresent(), fresh=fresh)
        return [n for n, present in have.items() if not present]

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        missing = self._missing_certs(rc.cluster, pool)
        approve = Command("kubectl certificate approve …", description="approve the kubelet serving certificate")
        return {name: [approve] for name in missing}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        """The first look at the cluster comes from the asking master's fact batch while the run has changed nothing
        (a no-op asks the API nothing more: the batch already ran the same kubectl call); every later look is
        fresh."""
        cluster = rc.cluster
        outcomes = {h.name: HostOutcome() for h in linux_nodes(cluster)}
        masters = initialised_masters(cluster, pool)
        if not masters:
            raise ControlPlaneError("no master is initialised: cannot approve certificates or check nodes")
        asked = masters[-1]  # view_master's choice, among the initialised masters
        api = pool.get(asked)
        allowed = {h.name: {h.name, str(rc.nodes.ip(h))} for h in linux_nodes(cluster)}
        missing = set(self._missing_certs(cluster, pool))
        approved: dict[str, list[str]] = {}
        deadline = time.monotonic() + DEFAULTS.health_timeout_s
        view = pool.read_fact(asked, ClusterView())
        while True:
            for csr in view.pending:
                if approvable(csr, allowed):
                    _kubectl(api, f"certificate approve {csr.name}")
                    approved.setdefault(csr.node, []).append(csr.name)
            if missing:
                missing = set(self._missing_certs(cluster, pool, fresh=True))
            not_ready = set(allowed) - view.ready
            if not missing and not not_ready and view.dns:
                break
            if time.monotonic() > deadline:
                disk = any("DiskPressure" in kinds for _, kinds in view.troubles)
                raise ControlPlaneError(
                    f"after {DEFAULTS.health_timeout_s:.0f} s: not Ready: {sorted(not_ready) or 'none'}; "
                    f"no serving certificate: {sorted(missing) or 'none'}; "
                    f"CoreDNS available: {'yes' if view.dns else 'no'}; "
                    f"node conditions: {_troubles_text(view.troubles)}",
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
            view = pool.read_fact(asked, ClusterView(), fresh=True)
        for node, names in approved.items():
            command = Command(f"{KUBECTL} certificate approve {' '.join(names)}")
            outcomes[node] = HostOutcome(changed=True, commands=(command,))
        return outcomes


def view_master(cluster: Cluster) -> list[Host]:
    """The master whose fact batch asks the API (`ClusterView`): the last, whose batch has no other slow read (the
    middle one asks etcd's health, roles/etcd/bootstrap.py)."""
    return cluster.masters[-1:]


def _kubectl(api: Transport, args: str) -> str:
    return api.run(f"{KUBECTL} {args}", timeout=60).stdout
