"""Dashboard: Kubernetes Dashboard 7.x (its chart's api, web, auth and metrics-scraper modules behind Kong), from
upstream's images, not in the artifact set. Rendered and validated by a server-side dry run; not proven running in
the lab.

Why the 7.x modules and not v2.7.0's single Deployment: v2.7.0 (2022) was the last manifest-installable release and
got no fix since; the 7.x line is what upstream kept releasing (chart 7.13.0: api 1.13.0, web 1.7.0, auth 1.3.0,
metrics-scraper 1.2.2). Its chart needs Helm; these are its objects written out, Kong configured as the chart does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from addons.render import manifest
from provision.artifacts.catalog import Release

MODULES = ("api", "web", "auth", "metrics-scraper")
CHART = "7.13.0"


@dataclass(frozen=True)
class DashboardArgs:
    images: dict[str, str]  # module → image, one per MODULES
    kong_version: str
    kong_image: str
    # The ClusterRole of an optional sign-in account (`dashboard-user`): read-only `view` by default; None: none.
    login_role: Literal["view", "edit", "admin", "cluster-admin"] | None = "view"
    namespace: str = "kubernetes-dashboard"

    @classmethod
    def for_release(cls, release: Release, **overrides: Any) -> DashboardArgs:
        return cls(
            images={m: release.dashboard_image(m) for m in MODULES},
            kong_version=release.kong,
            kong_image=release.kong_image,
            **overrides,
        )


def dashboard_objects(args: DashboardArgs) -> list[dict[str, Any]]:
    if set(args.images) != set(MODULES):
        raise ValueError(f"the dashboard needs one image per module: {', '.join(MODULES)}")
    return manifest(
        "dashboard.yaml.j2",
        chart=CHART,
        images=args.images,
        kong_version=args.kong_version,
        kong_image=args.kong_image,
        login_role=args.login_role,
        namespace=args.namespace,
    )


class Dashboard(pulumi.ComponentResource):
    """Output: `service` (namespace/name of its HTTPS Service)."""

    service: pulumi.Output[str]

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:addons:Dashboard", name, None, opts)
        from addons.apply import config_group

        self.objects = config_group(name, dashboard_objects(args), self)
        self.service = pulumi.Output.from_input(f"{args.namespace}/dashboard")
        self.register_outputs({"service": self.service})
