"""Every addon's objects, with every option on, as one server-side dry run sends them to a real apiserver
(tests/lab/test_kubernetes_smoke.py): the objects `pulumi up` would apply, rendered by the same functions."""

from __future__ import annotations

from typing import Any

from addons.cluster import addon_args, objects_of, setting
from addons.dashboard import DashboardArgs, dashboard_objects
from addons.grafana import admin_secret
from addons.ingress_nginx import IngressNginxArgs, ingress_nginx_objects
from addons.logs import LoggingArgs, logging_objects
from addons.monitoring import MonitoringArgs, monitoring_objects
from inventory.model import NFS, Addons
from provision.artifacts.catalog import Release

STAND_IN_PASSWORD = "dry-run-only"  # noqa: S105 - a dry run stores nothing


def every_addon(release: Release) -> dict[str, list[dict[str, Any]]]:
    """Per addon (the eight choices, each way it can render), its objects: the three the artifact set holds and
    the five from upstream's images, Grafana in both monitoring and logging, the webhook of ingress-nginx on."""
    own = Addons(storage="local-path", metrics=True, ingress="traefik")
    out = {setting(own, name): objects_of(args) for name, args in addon_args(own, release).items()}
    nfs = Addons(storage="nfs", nfs=NFS(server="192.0.2.10", path="/exports/k8s"), metrics=False, ingress="none")
    out["addons.storage: nfs"] = objects_of(addon_args(nfs, release)["storage"])
    out["addons.ingress: nginx"] = ingress_nginx_objects(IngressNginxArgs.for_release(release, admission_webhook=True))
    monitoring = MonitoringArgs.for_release(release, loki_url=LoggingArgs.for_release(release).loki_url)
    logging = LoggingArgs.for_release(release)
    for name, args, objects in (
        ("addons.monitoring: true", monitoring, monitoring_objects(monitoring)),
        ("addons.logging: true", logging, logging_objects(logging)),
    ):
        assert args.grafana is not None
        out[name] = [*objects, admin_secret(args.grafana, STAND_IN_PASSWORD)]
    out["addons.dashboard: true"] = dashboard_objects(DashboardArgs.for_release(release))
    return out


def namespaces(objects: list[dict[str, Any]]) -> list[str]:
    """The namespaces the objects live in, in first-seen order (a dry run creates none of them)."""
    return list(dict.fromkeys(o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]))
