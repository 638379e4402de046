"""Ingress: Traefik's Kubernetes Ingress provider behind a NodePort Service, proven in the lab (an HTTP route to a
pod answers through a node's port)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pulumi

from addons.render import manifest
from provision.artifacts.catalog import Release


@dataclass(frozen=True)
class TraefikArgs:
    version: str
    image: str
    replicas: int = 2
    http_node_port: int = 30080
    https_node_port: int = 30443
    class_name: str = "traefik"
    default_class: bool = True
    namespace: str = "traefik"

    @classmethod
    def for_release(cls, release: Release, **overrides: Any) -> TraefikArgs:
        return cls(version=release.traefik, image=release.traefik_image, **overrides)


def traefik_objects(args: TraefikArgs) -> list[dict[str, Any]]:
    return manifest(
        "traefik.yaml.j2",
        version=args.version,
        image=args.image,
        replicas=args.replicas,
        http_node_port=args.http_node_port,
        https_node_port=args.https_node_port,
        class_name=args.class_name,
        default_class=args.default_class,
        namespace=args.namespace,
    )


class NodePortIngressArgs(Protocol):
    @property
    def class_name(self) -> str: ...
    @property
    def http_node_port(self) -> int: ...
    @property
    def https_node_port(self) -> int: ...


class NodePortIngress(pulumi.ComponentResource):
    """An ingress controller behind a NodePort Service, its objects one ConfigGroup. Outputs: `ingress_class`,
    `http_node_port`, `https_node_port` (where a load balancer in front of the nodes sends HTTP and HTTPS)."""

    ingress_class: pulumi.Output[str]
    http_node_port: pulumi.Output[int]
    https_node_port: pulumi.Output[int]

    def __init__(
        self,
        kind: str,
        name: str,
        objects: list[dict[str, Any]],
        args: NodePortIngressArgs,
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        super().__init__(kind, name, None, opts)
        from addons.apply import config_group

        self.objects = config_group(name, objects, self)
        self.ingress_class = pulumi.Output.from_input(args.class_name)
        self.http_node_port = pulumi.Output.from_input(args.http_node_port)
        self.https_node_port = pulumi.Output.from_input(args.https_node_port)
        self.register_outputs(
            {
                "ingress_class": self.ingress_class,
                "http_node_port": self.http_node_port,
                "https_node_port": self.https_node_port,
            }
        )


class TraefikIngress(NodePortIngress):
    def __init__(self, name: str, args: TraefikArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:addons:TraefikIngress", name, traefik_objects(args), args, opts)
