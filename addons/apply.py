"""How an addon's objects reach the cluster: one pulumi-kubernetes ConfigGroup per addon (each object a resource of
the stack, diffed and updated on its own), through the Kubernetes provider made from the cluster's kubeconfig."""

from __future__ import annotations

from typing import Any

import pulumi


def kubernetes_provider(name: str, kubeconfig: pulumi.Input[str], parent: pulumi.Resource) -> pulumi.ProviderResource:
    """The provider every addon uses: the admin kubeconfig output (a secret; it points at the VIP)."""
    import pulumi_kubernetes as k8s

    return k8s.Provider(
        name,
        kubeconfig=pulumi.Output.secret(kubeconfig),
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def config_group(name: str, objects: list[dict[str, Any]], parent: pulumi.Resource) -> pulumi.Resource:
    """The addon's objects as one ConfigGroup, a child of the addon (it inherits the addon's provider)."""
    from pulumi_kubernetes.yaml.v2 import ConfigGroup, ConfigGroupArgs

    return ConfigGroup(name, ConfigGroupArgs(objs=objects), opts=pulumi.ResourceOptions(parent=parent))
