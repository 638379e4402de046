"""The inventory's `addons` section as Pulumi resources: one Kubernetes provider from the cluster's admin
kubeconfig, and a ComponentResource per addon turned on.

    addons:
      storage: local-path   → LocalPathStorage   (storage.py)         image in the artifact set, proven in the lab
      storage: nfs          → NFSStorage         (nfs.py)             upstream's image
      metrics: true         → MetricsServer      (metrics.py)         image in the artifact set, proven in the lab
      ingress: traefik      → TraefikIngress     (ingress.py)         image in the artifact set, proven in the lab
      ingress: nginx        → IngressNginx       (ingress_nginx.py)   upstream's image
      monitoring: true      → Monitoring         (monitoring.py)      upstream's images (Prometheus, Grafana, …)
      logging: true         → Logging            (logs.py)            upstream's images (Fluent Bit, Loki, Grafana)
      dashboard: true       → Dashboard          (dashboard.py)       upstream's images

The set's images are imported on every node when the set is uploaded, pulled from their registries otherwise. The
others exist only in their registries: a cluster whose nodes pull (`kubernetes.artifacts.source: upstream` or
`mirror`) installs them; an air-gapped one (`source: local`: only the set's images exist) refuses them before
anything is created, naming the images the set lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from addons.apply import kubernetes_provider
from addons.dashboard import Dashboard, DashboardArgs, dashboard_objects
from addons.ingress import NodePortIngress, TraefikArgs, TraefikIngress, traefik_objects
from addons.ingress_nginx import IngressNginx, IngressNginxArgs, ingress_nginx_objects
from addons.logs import Logging, LoggingArgs, logging_objects
from addons.metrics import MetricsServer, MetricsServerArgs, metrics_server_objects
from addons.monitoring import Monitoring, MonitoringArgs, monitoring_objects
from addons.nfs import NFSArgs, NFSStorage, nfs_objects
from addons.storage import LocalPathArgs, LocalPathStorage, local_path_objects
from inventory.errors import KeelsonError
from inventory.model import Addons
from provision.artifacts.catalog import Release

Source = Literal["upstream", "mirror", "local"]
AddonArgs = (
    LocalPathArgs
    | NFSArgs
    | MetricsServerArgs
    | TraefikArgs
    | IngressNginxArgs
    | MonitoringArgs
    | LoggingArgs
    | DashboardArgs
)


class AddonNotBuilt(KeelsonError):
    """The inventory turns on an addon whose images the cluster's nodes cannot get (not in an air-gapped set)."""


def wanted(settings: Addons) -> list[str]:
    """The addons `ClusterAddons` makes for these settings, in install order."""
    return [
        name
        for name, on in (
            ("storage", settings.storage != "none"),
            ("metrics", settings.metrics),
            ("ingress", settings.ingress != "none"),
            ("monitoring", settings.monitoring),
            ("logging", settings.logging),
            ("dashboard", settings.dashboard),
        )
        if on
    ]


def setting(settings: Addons, name: str) -> str:
    """The inventory setting that turns addon `name` on, as the user wrote it (`addons.ingress: nginx`)."""
    value = getattr(settings, name)
    return f"addons.{name}: {str(value).lower() if isinstance(value, bool) else value}"


def addon_args(settings: Addons, release: Release) -> dict[str, AddonArgs]:
    """Each wanted addon's typed arguments, in install order: what ClusterAddons installs and the dry run renders."""
    out: dict[str, AddonArgs] = {}
    for name in wanted(settings):
        if name == "storage" and settings.storage == "nfs":
            if settings.nfs is None:  # the inventory's rules refuse this first (addons.storage needs addons.nfs)
                raise KeelsonError("addons.storage: nfs needs addons.nfs: {server, path}")
            out[name] = NFSArgs.for_release(release, str(settings.nfs.server), settings.nfs.path)
        elif name == "storage":
            out[name] = LocalPathArgs.for_release(release)
        elif name == "metrics":
            out[name] = MetricsServerArgs.for_release(release)
        elif name == "ingress" and settings.ingress == "nginx":
            out[name] = IngressNginxArgs.for_release(release)
        elif name == "ingress":
            out[name] = TraefikArgs.for_release(release)
        elif name == "monitoring":  # its Grafana shows logging's Loki too when both are on
            loki = LoggingArgs.for_release(release).loki_url if settings.logging else None
            out[name] = MonitoringArgs.for_release(release, loki_url=loki)
        elif name == "logging":  # its own Grafana only without monitoring's
            out[name] = LoggingArgs.for_release(release, own_grafana=not settings.monitoring)
        elif name == "dashboard":
            out[name] = DashboardArgs.for_release(release)
    return out


def objects_of(args: AddonArgs) -> list[dict[str, Any]]:
    """The addon's rendered objects (without the Grafana admin Secret, made from the stack's secret config)."""
    match args:
        case LocalPathArgs():
            return local_path_objects(args)
        case NFSArgs():
            return nfs_objects(args)
        case MetricsServerArgs():
            return metrics_server_objects(args)
        case TraefikArgs():
            return traefik_objects(args)
        case IngressNginxArgs():
            return ingress_nginx_objects(args)
        case MonitoringArgs():
            return monitoring_objects(args)
        case LoggingArgs():
            return logging_objects(args)
        case DashboardArgs():
            return dashboard_objects(args)
    raise TypeError(f"not an addon's arguments: {args!r}")


def images_of(objects: list[dict[str, Any]]) -> set[str]:
    """Every image the objects' pods run (Deployments, DaemonSets, Jobs; init containers included)."""
    out: set[str] = set()
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        out |= {c["image"] for key in ("initContainers", "containers") for c in pod.get(key, [])}
    return out


def needs_grafana(settings: Addons) -> bool:
    return settings.monitoring or settings.logging


def not_installed(settings: Addons, source: Source, release: Release) -> list[str]:
    """The inventory's addon settings this cluster cannot install, each with the images its nodes cannot get: with
    `source: local` only the artifact set's images exist on the nodes; with upstream or mirror they pull the rest."""
    if source != "local":
        return []
    in_set = set(release.set_addon_images)
    out = []
    for name, args in addon_args(settings, release).items():
        missing = sorted(images_of(objects_of(args)) - in_set)
        if missing:
            out.append(f"{setting(settings, name)} (not in the set: {', '.join(missing)})")
    return out


def refuse_unbuilt(settings: Addons, source: Source, release: Release) -> None:
    missing = not_installed(settings, source, release)
    if missing:
        raise AddonNotBuilt(
            "kubernetes.artifacts.source is local (air-gapped: the nodes have only the artifact set's images) but "
            "the inventory turns on addons whose images keelson does not build: " + "; ".join(missing),
            hint="set them to none/false (ingress: traefik, storage: local-path and metrics: true are in the set), "
            "or use source: upstream or mirror so that the nodes pull their images",
        )


@dataclass
class ClusterAddonsArgs:
    kubeconfig: pulumi.Input[str]  # secret: the admin kubeconfig output of the cluster
    settings: Addons
    release: Release  # the cluster's Kubernetes release: which addon versions and images
    source: Source = "upstream"  # kubernetes.artifacts.source: where the nodes get images
    grafana_password: pulumi.Input[str] | None = None  # secret; needed with monitoring or logging
    # What they wait for (KeelsonCluster.api_ready, .addons_ready): the Kubernetes provider is configured once the
    # API answers; every addon's objects are applied once the nodes are Ready on the pod network.
    api_ready: Sequence[pulumi.Resource] = ()
    cluster_ready: Sequence[pulumi.Resource] = ()


Part = LocalPathStorage | NFSStorage | MetricsServer | TraefikIngress | IngressNginx | Monitoring | Logging | Dashboard


class ClusterAddons(pulumi.ComponentResource):
    """Outputs: `installed` (the addons' names), `storage_class`, `ingress_http_node_port` (when installed).
    `parts`: the addons' components, in install order (each holds its ConfigGroup as `objects`)."""

    installed: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        refuse_unbuilt(args.settings, args.source, args.release)
        if needs_grafana(args.settings) and args.grafana_password is None:
            raise KeelsonError("Grafana (monitoring, logging) needs an admin password: keelson:grafanaAdminPassword")
        super().__init__("keelson:addons:ClusterAddons", name, None, opts)
        provider = kubernetes_provider(f"{name}-kubernetes", args.kubeconfig, self, after=args.api_ready)
        child = pulumi.ResourceOptions(
            parent=self, providers={"kubernetes": provider}, depends_on=list(args.cluster_ready)
        )
        planned = addon_args(args.settings, args.release)
        outputs: dict[str, pulumi.Output[Any]] = {}
        self.parts: list[Part] = []
        for addon in planned.values():
            part = _part(name, addon, args.grafana_password, child)
            if isinstance(part, LocalPathStorage | NFSStorage):
                outputs["storage_class"] = part.storage_class
            if isinstance(part, NodePortIngress):
                outputs["ingress_http_node_port"] = part.http_node_port
            self.parts.append(part)
        self.installed = pulumi.Output.from_input(list(planned))
        self.register_outputs({"installed": self.installed, **outputs})


def _part(
    name: str, args: AddonArgs, grafana_password: pulumi.Input[str] | None, child: pulumi.ResourceOptions
) -> Part:
    match args:
        case LocalPathArgs():
            return LocalPathStorage(f"{name}-local-path", args, child)
        case NFSArgs():
            return NFSStorage(f"{name}-nfs", args, child)
        case MetricsServerArgs():
            return MetricsServer(f"{name}-metrics-server", args, child)
        case TraefikArgs():
            return TraefikIngress(f"{name}-traefik", args, child)
        case IngressNginxArgs():
            return IngressNginx(f"{name}-ingress-nginx", args, child)
        case MonitoringArgs():
            return Monitoring(f"{name}-monitoring", args, grafana_password, child)
        case LoggingArgs():
            return Logging(f"{name}-logging", args, grafana_password if args.grafana else None, child)
        case DashboardArgs():
            return Dashboard(f"{name}-dashboard", args, child)
    raise TypeError(f"not an addon's arguments: {args!r}")
