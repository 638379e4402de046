"""Role `containerd`: the container runtime for the kubelet — the sandbox (pause) image of the cluster's Kubernetes
release, the cgroup driver the kubelet uses (`kubernetes.cgroup_driver`), and registry mirrors when configured.

Phase "Container runtime" on every Linux host: the `containerd` package, `/etc/containerd/config.toml` (checked with
`containerd config dump` before it replaces the live one; a change restarts containerd), one
`/etc/containerd/certs.d/<registry>/hosts.toml` per mirrored registry, the unit enabled and running.
"""

from __future__ import annotations

from roles.containerd.phases import phases

__all__ = ["phases"]
