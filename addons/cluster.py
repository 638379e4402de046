"""The inventory's `addons` section as Pulumi resources: one Kubernetes provider from the cluster's admin
kubeconfig, and a ComponentResource per addon turned on.

    addons:
      storage: local-path   → LocalPathStorage   (storage.py)
      metrics: true         → MetricsServer      (metrics.py)
      ingress: traefik      → TraefikIngress     (ingress.py)

Each addon's image is in keelson's artifact set (built from its Go module; imported on every node when the set is
uploaded, pulled from its upstream registry otherwise). A choice this version cannot install (ingress `nginx`,
storage `nfs`, monitoring, logging, dashboard) is refused before anything is created, naming what to set instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from addons.apply import kubernetes_provider
from addons.ingress import TraefikArgs, TraefikIngress
from addons.metrics import MetricsServer, MetricsServerArgs
from addons.storage import LocalPathArgs, LocalPathStorage
from inventory.errors import KeelsonError
from inventory.model import Addons
from provision.artifacts.catalog import Release


class AddonNotBuilt(KeelsonError):
    """The inventory turns on an addon this version of keelson does not install."""


def not_installed(settings: Addons) -> list[str]:
    """The inventory's `addons` settings this version does not install (each as `addons.<field>: <value>`)."""
    out = []
    if settings.ingress == "nginx":
        out.append("addons.ingress: nginx (ingress-nginx was retired upstream in 2026; use traefik)")
    if settings.storage == "nfs":
        out.append("addons.storage: nfs")
    out += [f"addons.{name}: true" for name in ("monitoring", "logging", "dashboard") if getattr(settings, name)]
    return out


def refuse_unbuilt(settings: Addons) -> None:
    missing = not_installed(settings)
    if missing:
        raise AddonNotBuilt(
            "the inventory turns on addons this version of keelson does not install: " + "; ".join(missing),
            hint="set them to none/false (ingress: traefik, storage: local-path and metrics: true are installed)",
        )


def wanted(settings: Addons) -> list[str]:
    """The addons `ClusterAddons` makes for these settings, in install order."""
    return [
        name
        for name, on in (
            ("storage", settings.storage == "local-path"),
            ("metrics", settings.metrics),
            ("ingress", settings.ingress == "traefik"),
        )
        if on
    ]


@dataclass
class ClusterAddonsArgs:
    kubeconfig: pulumi.Input[str]  # secret: the admin kubeconfig output of the cluster
    settings: Addons
    release: Release  # the cluster's Kubernetes release: which addon versions and images


class ClusterAddons(pulumi.ComponentResource):
    """Outputs: `installed` (the addons' names), `storage_class`, `ingress_http_node_port` (when installed).
    `parts`: the addons' components, in install order (each holds its ConfigGroup as `objects`)."""

    installed: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        refuse_unbuilt(args.settings)
        super().__init__("keelson:addons:ClusterAddons", name, None, opts)
        provider = kubernetes_provider(f"{name}-kubernetes", args.kubeconfig, self)
        child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider})
        names = wanted(args.settings)
        outputs: dict[str, pulumi.Output[object]] = {}
        self.parts: list[LocalPathStorage | MetricsServer | TraefikIngress] = []
        if "storage" in names:
            storage = LocalPathStorage(f"{name}-local-path", LocalPathArgs.for_release(args.release), child)
            outputs["storage_class"] = storage.storage_class
            self.parts.append(storage)
        if "metrics" in names:
            self.parts.append(
                MetricsServer(f"{name}-metrics-server", MetricsServerArgs.for_release(args.release), child)
            )
        if "ingress" in names:
            ingress = TraefikIngress(f"{name}-traefik", TraefikArgs.for_release(args.release), child)
            outputs["ingress_http_node_port"] = ingress.http_node_port
            self.parts.append(ingress)
        self.installed = pulumi.Output.from_input(names)
        self.register_outputs({"installed": self.installed, **outputs})
