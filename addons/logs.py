"""Logging: Fluent Bit on every node shipping the containers' logs to Loki (single binary, filesystem storage), and
Grafana with Loki as a data source — its own unless monitoring's Grafana is on, which then gets Loki as a second
data source. Upstream's images, not in the artifact set. Rendered and validated by a server-side dry run; not proven
running in the lab. (A module named `logs`, not `logging`: the standard library's name.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from addons.grafana import GrafanaArgs, grafana_objects, objects_with_grafana
from addons.render import manifest
from provision.artifacts.catalog import Release


@dataclass(frozen=True)
class LoggingArgs:
    loki_version: str
    loki_image: str
    fluent_bit_version: str
    fluent_bit_image: str
    grafana: GrafanaArgs | None  # None: monitoring's Grafana shows the logs (or no UI)
    retention: str = "168h"
    data_size: str = "8Gi"  # the emptyDir's limit
    namespace: str = "logging"

    @property
    def loki_url(self) -> str:
        return loki_url(self.namespace)

    @classmethod
    def for_release(cls, release: Release, own_grafana: bool = True, **overrides: Any) -> LoggingArgs:
        namespace = overrides.get("namespace", "logging")
        ui = GrafanaArgs.for_release(release, namespace, loki_url=loki_url(namespace))
        return cls(
            loki_version=release.loki,
            loki_image=release.loki_image,
            fluent_bit_version=release.fluent_bit,
            fluent_bit_image=release.fluent_bit_image,
            grafana=ui if own_grafana else None,
            **overrides,
        )


def loki_url(namespace: str = "logging") -> str:
    return f"http://loki.{namespace}.svc:3100"


def logging_objects(args: LoggingArgs) -> list[dict[str, Any]]:
    objects = manifest(
        "logging.yaml.j2",
        loki_version=args.loki_version,
        loki_image=args.loki_image,
        fluent_bit_version=args.fluent_bit_version,
        fluent_bit_image=args.fluent_bit_image,
        retention=args.retention,
        data_size=args.data_size,
        namespace=args.namespace,
    )
    return objects + (grafana_objects(args.grafana) if args.grafana else [])


class Logging(pulumi.ComponentResource):
    """Output: `loki_url` (in-cluster), `grafana_service` (namespace/name, when this addon has its own Grafana)."""

    loki_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: LoggingArgs,
        grafana_password: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keelson:addons:Logging", name, None, opts)
        self.objects, outputs = objects_with_grafana(name, logging_objects(args), args.grafana, grafana_password, self)
        self.loki_url = pulumi.Output.from_input(args.loki_url)
        self.register_outputs({"loki_url": self.loki_url, **outputs})
