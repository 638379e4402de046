"""Monitoring: a Prometheus server (no operator, no CRDs) scraping the apiserver, the kubelets and cAdvisor,
node-exporter on every node, and Grafana with Prometheus as its data source — upstream's images, not in the artifact
set. Rendered and validated by a server-side dry run; not proven running in the lab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from addons.grafana import GrafanaArgs, grafana_objects, objects_with_grafana
from addons.render import manifest
from provision.artifacts.catalog import Release


@dataclass(frozen=True)
class MonitoringArgs:
    version: str
    image: str
    node_exporter_version: str
    node_exporter_image: str
    grafana: GrafanaArgs | None  # None: Prometheus alone
    node_exporter: bool = True
    retention: str = "7d"
    data_size: str = "8Gi"  # the emptyDir's limit
    scrape_interval: str = "30s"
    namespace: str = "monitoring"

    @property
    def prometheus_url(self) -> str:
        return prometheus_url(self.namespace)

    @classmethod
    def for_release(
        cls, release: Release, grafana: bool = True, loki_url: str | None = None, **overrides: Any
    ) -> MonitoringArgs:
        """`loki_url`: logging's Loki, a second data source of this Grafana (logging is on too)."""
        namespace = overrides.get("namespace", "monitoring")
        ui = GrafanaArgs.for_release(release, namespace, prometheus_url=prometheus_url(namespace), loki_url=loki_url)
        return cls(
            version=release.prometheus,
            image=release.prometheus_image,
            node_exporter_version=release.node_exporter,
            node_exporter_image=release.node_exporter_image,
            grafana=ui if grafana else None,
            **overrides,
        )


def prometheus_url(namespace: str = "monitoring") -> str:
    return f"http://prometheus.{namespace}.svc:9090"


def monitoring_objects(args: MonitoringArgs) -> list[dict[str, Any]]:
    objects = manifest(
        "prometheus.yaml.j2",
        version=args.version,
        image=args.image,
        node_exporter=args.node_exporter,
        node_exporter_version=args.node_exporter_version,
        node_exporter_image=args.node_exporter_image,
        retention=args.retention,
        data_size=args.data_size,
        scrape_interval=args.scrape_interval,
        namespace=args.namespace,
    )
    return objects + (grafana_objects(args.grafana) if args.grafana else [])


class Monitoring(pulumi.ComponentResource):
    """Outputs: `prometheus_url` (in-cluster), `grafana_service` (namespace/name, when Grafana is on)."""

    prometheus_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: MonitoringArgs,
        grafana_password: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keelson:addons:Monitoring", name, None, opts)
        self.objects, outputs = objects_with_grafana(
            name, monitoring_objects(args), args.grafana, grafana_password, self
        )
        self.prometheus_url = pulumi.Output.from_input(args.prometheus_url)
        self.register_outputs({"prometheus_url": self.prometheus_url, **outputs})
