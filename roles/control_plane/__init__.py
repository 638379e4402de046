"""Role `control_plane`: the HA control plane with kubeadm (and the join steps the workers use too).

Masters: the shared PKI comes from keelson's state (roles/pki/kubernetes.py), the apiserver gets its hardening
files (authentication config allowing anonymous only on /healthz, /livez, /readyz; audit policy with rotation;
Secrets encrypted at rest), kubeadm v1beta4 configuration rendered per node (external etcd, VIP endpoint, node
IPs, certSANs), `kubeadm init` on the first master when no master was ever initialised, then every other master
joins one at a time, each gated on its apiserver and the API through the VIP answering /readyz. The workers' role
(roles/worker) joins the workers with this role's join steps, then approves the serving certificates and waits for
every node Ready. Markers (/etc/kubernetes/keelson/{init,join}.done) make reruns skip what is done and reset what an
interruption left half done.
"""

from __future__ import annotations

from roles.control_plane.phases import phases

__all__ = ["phases"]
