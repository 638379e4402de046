"""The certificate renewal plan (`keelson certs renew`): the control plane's certificates, master by master."""

from __future__ import annotations

from inventory.model import Cluster
from roles.control_plane import certs_renew
from roles.engine.phase import Plan


def plan(cluster: Cluster) -> Plan:
    return Plan("certs renew", certs_renew.phases(cluster))
