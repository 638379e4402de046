"""Role `kubernetes_node`: what every Linux Kubernetes node needs before kubeadm — kubeadm, kubelet, kubectl,
crictl and the CNI plugins from the inventory's artifact source (sha256-checked, all or nothing, nothing uploaded
or downloaded when the installed digest already matches), the images imported when the source is air-gapped, the
kubelet's systemd unit (enabled; kubeadm starts it) and crictl's config.

Sources (`kubernetes.artifacts.source`): `upstream` (official release binaries over HTTPS, images pulled),
`mirror` (a server with a set's layout, e.g. `keelson artifacts serve`), `local` (a set built on the operator's
machine, uploaded over SSH). See provision/artifacts/layout.py for the layout and roles/kubernetes_node/sources.py
for how digests are resolved.
"""

from __future__ import annotations

from roles.kubernetes_node.phases import phases

__all__ = ["phases"]
