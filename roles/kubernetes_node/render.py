"""Render the kubelet unit, its kubeadm drop-in and crictl's config from the templates beside this module. Pure."""

from __future__ import annotations

from roles.kubernetes_node.defaults import DEFAULTS, KubernetesNodeDefaults
from roles.templating import render


def kubelet_unit(d: KubernetesNodeDefaults = DEFAULTS) -> str:
    return render(__file__, "kubelet.service.j2", bin_dir=d.bin_dir)


def kubelet_dropin(d: KubernetesNodeDefaults = DEFAULTS) -> str:
    return render(__file__, "10-kubeadm.conf.j2", bin_dir=d.bin_dir)


def crictl_yaml(d: KubernetesNodeDefaults = DEFAULTS) -> str:
    return render(__file__, "crictl.yaml.j2", socket=d.containerd_socket)
