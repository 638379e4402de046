"""Render the etcd config file and the systemd unit from the Jinja2 templates beside this module (StrictUndefined).

Pure functions of the inventory and the run's node IPs: the same inputs render the same bytes, so a rerun
compares equal by sha256.
"""

from __future__ import annotations

from inventory.model import Cluster, Host
from roles.engine.nodes import NodeIPs
from roles.etcd.commands import cluster_token, initial_cluster, local_client_url, member_client_url, member_peer_url
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.pki.defaults import DEFAULTS as PKI
from roles.templating import render


def render_config(cluster: Cluster, host: Host, nodes: NodeIPs | None = None) -> bytes:
    text = render(
        __file__,
        "etcd.conf.yml.j2",
        cluster_name=cluster.name,
        name=host.name,
        data_dir=cluster.etcd.data_dir,
        peer_url=member_peer_url(cluster, host, nodes),
        client_url=member_client_url(cluster, host, nodes),
        local_client_url=local_client_url(cluster),
        initial_cluster=initial_cluster(cluster, nodes),
        token=cluster_token(cluster),
        ca_cert=PKI.etcd_ca_cert,
        server_cert=PKI.etcd_server_cert,
        server_key=PKI.etcd_server_key,
        peer_cert=PKI.etcd_peer_cert,
        peer_key=PKI.etcd_peer_key,
    )
    return text.encode()


def render_unit(cluster: Cluster) -> bytes:
    text = render(
        __file__,
        "etcd.service.j2",
        cluster_name=cluster.name,
        user=PKI.etcd_user,
        binary=ETCD.binary,
        config_file=ETCD.config_file,
    )
    return text.encode()
