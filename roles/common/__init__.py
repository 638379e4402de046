"""Role `common`: prepare every Linux host for Kubernetes (modules, sysctl, swap, time, packages, names).

Phase "Prepare hosts" on every Linux host. What it leaves on a host (paths in `defaults.py`):
    /etc/modules-load.d/keelson.conf            overlay, br_netfilter (loaded now unless the host is a container)
    /etc/sysctl.d/99-keelson-kubernetes.conf    bridge-nf-call-iptables/ip6tables, ip_forward (set now where writable)
    swap off (now and in /etc/fstab), systemd-timesyncd enabled (and running outside containers)
    the base packages (conntrack, socat, iptables, iproute2, kmod, curl, ca-certificates)
    /etc/hostname = the inventory name, and a managed block in /etc/hosts: the VIP as `<cluster>-api`, every host
"""

from __future__ import annotations

from roles.common.phases import phases

__all__ = ["phases"]
