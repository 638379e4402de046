"""Ingress: the ingress-nginx controller behind a NodePort Service, from upstream's image (not in the artifact set:
nginx + Lua, no Go build). Rendered and validated by a server-side dry run; not proven running in the lab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from addons.ingress import NodePortIngress
from addons.render import manifest
from provision.artifacts.catalog import Release


@dataclass(frozen=True)
class IngressNginxArgs:
    version: str
    image: str
    certgen_image: str  # the admission webhook's certificate Jobs
    replicas: int = 2
    http_node_port: int = 30080  # the same ports as Traefik's: the load balancer in front does not change
    https_node_port: int = 30443
    class_name: str = "nginx"
    default_class: bool = True
    admission_webhook: bool = False  # a ValidatingWebhookConfiguration (failurePolicy Fail) and its two Jobs
    namespace: str = "ingress-nginx"

    @classmethod
    def for_release(cls, release: Release, **overrides: Any) -> IngressNginxArgs:
        return cls(
            version=release.ingress_nginx,
            image=release.ingress_nginx_image,
            certgen_image=release.ingress_nginx_certgen_image,
            **overrides,
        )


def ingress_nginx_objects(args: IngressNginxArgs) -> list[dict[str, Any]]:
    return manifest(
        "ingress-nginx.yaml.j2",
        version=args.version,
        image=args.image,
        certgen_image=args.certgen_image,
        replicas=args.replicas,
        http_node_port=args.http_node_port,
        https_node_port=args.https_node_port,
        class_name=args.class_name,
        default_class=args.default_class,
        admission_webhook=args.admission_webhook,
        namespace=args.namespace,
    )


class IngressNginx(NodePortIngress):
    def __init__(self, name: str, args: IngressNginxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:addons:IngressNginx", name, ingress_nginx_objects(args), args, opts)
