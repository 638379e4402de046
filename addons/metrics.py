"""metrics-server: the resource metrics API (`kubectl top`, the HorizontalPodAutoscaler), proven in the lab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from addons.render import manifest
from provision.artifacts.catalog import Release


@dataclass(frozen=True)
class MetricsServerArgs:
    version: str
    image: str
    replicas: int = 1
    resolution_s: int = 15  # how often it scrapes each kubelet

    @classmethod
    def for_release(cls, release: Release, **overrides: Any) -> MetricsServerArgs:
        return cls(version=release.metrics_server, image=release.metrics_server_image, **overrides)


def metrics_server_objects(args: MetricsServerArgs) -> list[dict[str, Any]]:
    return manifest(
        "metrics-server.yaml.j2",
        version=args.version,
        image=args.image,
        replicas=args.replicas,
        resolution_s=args.resolution_s,
    )


class MetricsServer(pulumi.ComponentResource):
    """Output: `api_service`, the aggregated API it serves (v1beta1.metrics.k8s.io)."""

    api_service: pulumi.Output[str]

    def __init__(self, name: str, args: MetricsServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:addons:MetricsServer", name, None, opts)
        from addons.apply import config_group

        self.objects = config_group(name, metrics_server_objects(args), self)
        self.api_service = pulumi.Output.from_input("v1beta1.metrics.k8s.io")
        self.register_outputs({"api_service": self.api_service})
