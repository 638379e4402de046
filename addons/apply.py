"""How an addon's objects reach the cluster: one pulumi-kubernetes ConfigGroup per addon (each object a resource of
the stack, diffed and updated on its own), through the Kubernetes provider made from the cluster's kubeconfig."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi


def kubernetes_provider(
    name: str, kubeconfig: pulumi.Input[str], parent: pulumi.Resource, after: Sequence[pulumi.Resource] = ()
) -> pulumi.ProviderResource:
    """The provider every addon uses: the admin kubeconfig output (a secret; it points at the VIP), configured once
    `after` is done (the resources that bring the API up: configuring reads the API's discovery and schema)."""
    import pulumi_kubernetes as k8s

    return k8s.Provider(
        name,
        kubeconfig=pulumi.Output.secret(kubeconfig),
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)),
    )


def config_group(name: str, objects: list[dict[str, Any]], parent: pulumi.Resource) -> pulumi.Resource:
    """The addon's objects as one ConfigGroup, a child of the addon (it inherits the addon's provider)."""
    from pulumi_kubernetes.yaml.v2 import ConfigGroup, ConfigGroupArgs

    return ConfigGroup(name, ConfigGroupArgs(objs=objects), opts=pulumi.ResourceOptions(parent=parent))


def config_groups_with_secret(
    name: str, objects: list[dict[str, Any]], secret: dict[str, Any], parent: pulumi.Resource
) -> pulumi.Resource:
    """The objects with a Secret their pods read, in an order that needs no retry: the Namespace (the objects'
    first) as a ConfigGroup of its own, then the Secret — a resource of its own, so that only it is secret in the
    stack's state, not every object beside it — then the rest, whose Deployments find the Secret when they start."""
    import pulumi_kubernetes as k8s
    from pulumi_kubernetes.yaml.v2 import ConfigGroup, ConfigGroupArgs

    namespace, rest = objects[0], objects[1:]
    if namespace["kind"] != "Namespace" or namespace["metadata"]["name"] != secret["metadata"]["namespace"]:
        raise ValueError("the objects must begin with the Secret's Namespace")
    made = ConfigGroup(
        f"{name}-namespace", ConfigGroupArgs(objs=[namespace]), opts=pulumi.ResourceOptions(parent=parent)
    )
    stored = k8s.core.v1.Secret(
        f"{name}-{secret['metadata']['name']}",
        metadata=secret["metadata"],
        type=secret.get("type", "Opaque"),
        string_data=secret["stringData"],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[made]),
    )
    return ConfigGroup(
        name, ConfigGroupArgs(objs=rest), opts=pulumi.ResourceOptions(parent=parent, depends_on=[stored])
    )
