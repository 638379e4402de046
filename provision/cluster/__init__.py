"""The cluster under Pulumi: a ComponentResource whose resources run keelson's role phases (component.py), the
dynamic provider that runs them through the engine (provider.py), which phases each resource runs (groups.py) and
how a change is detected (fingerprint.py)."""

from provision.cluster.component import ClusterArgs, ClusterHost, KeelsonCluster

__all__ = ["ClusterArgs", "ClusterHost", "KeelsonCluster"]
