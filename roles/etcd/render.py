"""Render the etcd config file and the systemd unit from the Jinja2 templates beside this module (StrictUndefined).

Pure functions of the inventory: the same inventory renders the same bytes, so a rerun compares equal by sha256.
"""

from __future__ import annotations

import hashlib

from inventory.model import Cluster, Host
from roles.etcd import defaults
from roles.etcd.commands import cluster_token, initial_cluster, local_client_url, member_client_url, member_peer_url
from roles.templating import render


def render_config(cluster: Cluster, host: Host) -> bytes:
    text = render(
        __file__,
        "etcd.conf.yml.j2",
        cluster_name=cluster.name,
        name=host.name,
        data_dir=cluster.etcd.data_dir,
        peer_url=member_peer_url(cluster, host),
        client_url=member_client_url(cluster, host),
        local_client_url=local_client_url(cluster),
        initial_cluster=initial_cluster(cluster),
        token=cluster_token(cluster),
        ca_cert=defaults.CA_CERT,
        server_cert=defaults.SERVER_CERT,
        server_key=defaults.SERVER_KEY,
        peer_cert=defaults.PEER_CERT,
        peer_key=defaults.PEER_KEY,
    )
    return text.encode()


def render_unit(cluster: Cluster) -> bytes:
    text = render(
        __file__,
        "etcd.service.j2",
        cluster_name=cluster.name,
        user=defaults.ETCD_USER,
        binary=defaults.ETCD_BINARY,
        config_file=defaults.CONFIG_FILE,
    )
    return text.encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
