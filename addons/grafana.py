"""Grafana, the UI of `monitoring` and `logging`: one Grafana with the data sources of whichever is on (monitoring's
when both are). Its admin password is a Secret made from the stack's secret config, never a default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from addons.render import manifest
from provision.artifacts.catalog import Release

ADMIN_SECRET = "grafana-admin"  # noqa: S105 - the Secret's name, not a password


@dataclass(frozen=True)
class GrafanaArgs:
    version: str
    image: str
    namespace: str
    prometheus_url: str | None = None
    loki_url: str | None = None
    admin_secret: str = ADMIN_SECRET

    @classmethod
    def for_release(cls, release: Release, namespace: str, **overrides: Any) -> GrafanaArgs:
        return cls(version=release.grafana, image=release.grafana_image, namespace=namespace, **overrides)


def grafana_objects(args: GrafanaArgs) -> list[dict[str, Any]]:
    if not (args.prometheus_url or args.loki_url):
        raise ValueError("Grafana needs a data source: prometheus_url or loki_url")
    return manifest(
        "grafana.yaml.j2",
        version=args.version,
        image=args.image,
        namespace=args.namespace,
        prometheus_url=args.prometheus_url,
        loki_url=args.loki_url,
        admin_secret=args.admin_secret,
    )


def admin_secret(args: GrafanaArgs, password: pulumi.Input[str]) -> dict[str, Any]:
    """The Secret the Deployment reads its admin login from (`password`: a secret Output under `pulumi up`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": args.admin_secret, "namespace": args.namespace},
        "type": "Opaque",
        "stringData": {"admin-user": "admin", "admin-password": password},
    }


def objects_with_grafana(
    name: str,
    objects: list[dict[str, Any]],
    grafana: GrafanaArgs | None,
    password: pulumi.Input[str] | None,
    parent: pulumi.Resource,
) -> tuple[pulumi.Resource, dict[str, Any]]:
    """An addon's objects as its ConfigGroup(s) — with Grafana's admin Secret first when the addon has a Grafana —
    and the outputs that adds (`grafana_service`, namespace/name)."""
    from addons.apply import config_group, config_groups_with_secret

    if grafana is None:
        return config_group(name, objects, parent), {}
    if password is None:
        raise ValueError("Grafana needs its admin password (keelson:grafanaAdminPassword)")
    secret = admin_secret(grafana, pulumi.Output.secret(password))
    return config_groups_with_secret(name, objects, secret, parent), {"grafana_service": f"{grafana.namespace}/grafana"}
