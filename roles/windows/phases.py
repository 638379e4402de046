"""The "Windows workers | …" phases, in order, for the apply plan (after the Linux workers): prepare the host, its
binaries, containerd, the join, flanneld and kube-proxy, then serving certificates and Ready.

Refused up front, before any host is touched (a clear message, exit 2): artifacts from a `local` set or images
imported from one (keelson builds linux/amd64 binaries and Linux images only; a Windows node needs Windows binaries
and a Windows pause image), and a mirror CA file (Windows checks TLS against its own certificate store). Clusters
whose CNI is not flannel get no Windows phases: the apply plan names Windows hosts as not applied yet.
"""

from __future__ import annotations

from inventory.errors import KeelsonError
from inventory.model import OS, Cluster
from roles.engine.phase import AnyPhase, Phase, of_role

CNIS = ("flannel",)  # flannel's vxlan backend has a Windows side (win-overlay + flanneld.exe)


def refusal(cluster: Cluster) -> str | None:
    """Why this inventory's Windows workers cannot be applied by this version, or None."""
    artifacts = cluster.kubernetes.artifacts
    if artifacts.source == "local":
        return (
            "kubernetes.artifacts.source local: Windows workers need Windows binaries (kubelet.exe, containerd, "
            "flanneld.exe, the Windows CNI plugins), and keelson builds linux/amd64 sets only"
        )
    if artifacts.image_mode == "import":
        return (
            "kubernetes.artifacts.images import: a Windows node's pause image is a Windows image, which keelson's "
            "artifact sets do not hold"
        )
    if artifacts.ca_file:
        return "kubernetes.artifacts.ca_file: Windows workers check the mirror's TLS against Windows' own store"
    return None


def phases(cluster: Cluster) -> list[AnyPhase]:
    if not any(h.os is OS.WINDOWS for h in cluster.workers) or cluster.network.cni not in CNIS:
        return []
    # the role's modules only for an inventory with Windows workers: ~40 ms of every other apply's start-up
    from provision.artifacts.catalog import release
    from provision.artifacts.sources import Resolver
    from roles.windows.fetch import WindowsFetchStep
    from roles.windows.nodes import WindowsServingCertsAndReady, windows_workers
    from roles.windows.steps import containerd_steps, feature_gate, join_steps, network_steps, prepare_steps

    why = refusal(cluster)
    if why is not None:
        raise KeelsonError(
            f"cannot apply the Windows workers ({', '.join(h.name for h in windows_workers(cluster))}): {why}",
            hint="use kubernetes.artifacts source upstream (images pulled), or a mirror carrying the Windows files "
            "(README: Windows workers)",
        )
    rel = release(cluster.kubernetes.release_version)
    resolver = Resolver(cluster.kubernetes.artifacts, rel)
    return of_role(
        "windows",
        [
            Phase(
                "Windows workers | Prepare (Containers feature, folders, firewall)",
                windows_workers,
                prepare_steps(),
                gate=feature_gate,
            ),
            Phase("Windows workers | Binaries", windows_workers, [WindowsFetchStep(resolver)]),
            Phase("Windows workers | containerd", windows_workers, containerd_steps(rel.pause_image)),
            Phase("Windows workers | Join (in parallel)", windows_workers, join_steps()),
            Phase("Windows workers | flanneld and kube-proxy", windows_workers, network_steps()),
            WindowsServingCertsAndReady(),
        ],
    )
