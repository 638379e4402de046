"""Render the etcd config file and the systemd unit from the Jinja2 templates beside this module (StrictUndefined).

Pure functions of the inventory, the run's node IPs and, for the bootstrap lines, what the member already is: the same
inputs render the same bytes, so a rerun compares equal by sha256.

The bootstrap lines (`initial-cluster`, `initial-cluster-token`, `initial-cluster-state`: `bootstrap_block`) are read
by etcd only while its data dir is empty. A new cluster's members get `new` and every inventory member; a member that
joins a running cluster gets `existing` and the members `etcdctl member add` answered (`joining_block`); and a member
that has data — or is joining — keeps the lines its config already has (`kept_block`): adding a host to the inventory
does not rewrite, and so does not restart, the members that are running.
"""

from __future__ import annotations

from typing import Literal

from inventory.model import Cluster, Host
from roles.engine.nodes import NodeIPs
from roles.etcd.commands import cluster_token, initial_cluster, local_client_url, member_client_url, member_peer_url
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.pki.defaults import DEFAULTS as PKI
from roles.templating import render

BLOCK_FIRST = "initial-cluster:"
BLOCK_LAST = "initial-cluster-state:"


def bootstrap_block(cluster: Cluster, initial: str, state: Literal["new", "existing"]) -> str:
    """The config's bootstrap lines (without the last newline)."""
    text = render(__file__, "etcd-bootstrap.yml.j2", initial_cluster=initial, token=cluster_token(cluster), state=state)
    return text.rstrip("\n")


def new_block(cluster: Cluster, nodes: NodeIPs | None = None) -> str:
    """A member of a new cluster: every inventory member, `new`."""
    return bootstrap_block(cluster, initial_cluster(cluster, nodes), "new")


def joining_block(cluster: Cluster, initial: str) -> str:
    """A member joining a running cluster after `member add`: the members it answered, `existing`."""
    return bootstrap_block(cluster, initial, "existing")


def block_state(block: str) -> str:
    """`new` or `existing` (what the block's last line says)."""
    return block.rsplit(BLOCK_LAST, 1)[-1].strip()


def kept_block(config: str | None, *, has_data: bool) -> str | None:
    """The bootstrap lines of the config a member has now, when it keeps them: it has data (etcd no longer reads
    them), or they say `existing` (a joining member whose start is not finished). None: render them afresh."""
    if not config:
        return None
    lines = config.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith(BLOCK_FIRST)), None)
    if first is None:
        return None
    last = next((i for i in range(first, len(lines)) if lines[i].startswith(BLOCK_LAST)), None)
    if last is None:
        return None
    block = "\n".join(lines[first : last + 1])
    return block if has_data or block_state(block) == "existing" else None


def render_config(cluster: Cluster, host: Host, nodes: NodeIPs | None = None, *, bootstrap: str | None = None) -> bytes:
    """`bootstrap`: the bootstrap lines to use (`kept_block`, `joining_block`); None: a new cluster's (`new_block`)."""
    text = render(
        __file__,
        "etcd.conf.yml.j2",
        cluster_name=cluster.name,
        name=host.name,
        data_dir=cluster.etcd.data_dir,
        peer_url=member_peer_url(cluster, host, nodes),
        client_url=member_client_url(cluster, host, nodes),
        local_client_url=local_client_url(cluster),
        bootstrap=new_block(cluster, nodes) if bootstrap is None else bootstrap,
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
