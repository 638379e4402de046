"""etcd role: an external etcd cluster with TLS on the masters (or on dedicated `etcd`-role hosts).

CONTRACT (stable: the backups package and the control-plane role build on it; change it only with them)
=======================================================================================================

Members
    `cluster.etcd_members` (masters, or the hosts with role `etcd` when `etcd.placement: dedicated`), 3 or 5.
    Member name = inventory host name. Initial cluster token = `cluster_token(cluster)` = "keelson-<cluster.name>"
    (stable across runs). `initial-cluster-state: new` and every inventory member at bootstrap; `existing` and the
    members `etcdctl member add` answered for a member that joins a running cluster (`keelson join`). etcd reads
    these lines only while its data dir is empty, and a member with data keeps them as written (render.kept_block):
    a host added to the inventory never rewrites, and so never restarts, the running members.

URLs on the member's node IP (`NodeIPs.ip(host)`: internal_address, an IP address, or discovered by the run;
IPv6 addresses in brackets)
    client  https://<node IP>:<cluster.etcd.client_port>   (also listens on https://127.0.0.1:<client_port>)
    peer    https://<node IP>:<cluster.etcd.peer_port>
    TLS on both, `client-cert-auth: true` on both: a client without a certificate signed by the etcd CA is refused.

Files on every etcd member (dirs 0755 root; keys 0600 owner etcd for etcd's own, root for the clients). The PKI
role puts the certificates there (their paths: `roles/pki/defaults.py`); this role's own paths: `defaults.py`
    /etc/etcd/pki/ca.crt                         the etcd CA (one per cluster, made once on the operator side)
    /etc/etcd/pki/server.crt, server.key         SANs: host name (+ its DNS address), node IP, localhost, 127.0.0.1, ::1
    /etc/etcd/pki/peer.crt,   peer.key           SANs: host name (+ DNS address), node IP (serverAuth + clientAuth)
    /etc/etcd/pki/healthcheck-client.crt, .key   client cert keelson uses for etcdctl (health gate, member list)
    /etc/keelson/backup/etcd-ca.crt              = the etcd CA, for the backup agent
    /etc/keelson/backup/etcd-client.crt, .key    client cert of the backup agent (CN keelson-backup), root 0600
    /etc/etcd/etcd.conf.yml                      etcd's whole config (`etcd --config-file`), rendered from Jinja2
    data dir = `cluster.etcd.data_dir` (default /var/lib/etcd), owner etcd, 0700
Files on every master (kubeadm's external-etcd layout, consumed by the control-plane role)
    /etc/kubernetes/pki/etcd/ca.crt
    /etc/kubernetes/pki/apiserver-etcd-client.crt, apiserver-etcd-client.key  (CN kube-apiserver-etcd-client)

Unit
    `etcd.service`, keelson's own full unit at /etc/systemd/system/etcd.service (it replaces Debian's vendor unit,
    which races the network at boot): `After=/Wants=network-online.target`, `Type=notify`, `User=etcd`,
    `Restart=on-failure`, `RestartSec=2`, `ExecStart=/usr/bin/etcd --config-file /etc/etcd/etcd.conf.yml`, enabled.

Operator-side state (StateDir of the cluster, 0700 dirs / 0600 files)
    pki/etcd/ca.crt, ca.key; pki/etcd/<host>/server.{crt,key}, peer.{crt,key};
    pki/etcd/{healthcheck-client,backup-client,apiserver-etcd-client}.{crt,key}; pki/inventory.json (expiries).
    `roles.pki.store.cert_expiries(state) -> list[CertInfo(name, host, not_after, path)]`.

Python helpers (roles/etcd/commands.py; all return one shell command string, tokens quoted with shlex)
    TLSPaths(ca, cert, key); HEALTHCHECK_TLS, BACKUP_TLS (the paths above)
    EtcdVersion.parse("etcd Version: 3.4.23 ...") / EtcdVersion.parse("3.5.17"); .uses_etcdutl (>= 3.5)
    etcdctl(args, *, endpoints, tls) -> str            "ETCDCTL_API=3 etcdctl --endpoints=… --cacert … <args>"
    snapshot_save_cmd(snapshot, *, endpoint, tls) -> str
    snapshot_restore_cmd(version, snapshot, name, initial_cluster, token, peer_url, data_dir) -> str
        3.4: "ETCDCTL_API=3 etcdctl snapshot restore …"; 3.5+: "etcdutl snapshot restore …"; flags --name
        --initial-cluster --initial-cluster-token --initial-advertise-peer-urls --data-dir
    snapshot_status_cmd(version, snapshot) -> str        (-w json; etcdctl for 3.4, etcdutl for 3.5+)
    initial_cluster(cluster, nodes=None) -> str          "m1=https://10.0.0.11:2380,m2=…" in inventory order
    member_peer_url(cluster, host, nodes=None) -> str; member_client_url(cluster, host, nodes=None) -> str
    client_endpoints(cluster, nodes=None) -> str         comma-separated client URLs of every member
        (`nodes`: the run's NodeIPs, `ctx.nodes`/`rc.nodes`; without it the inventory's own node IPs, and a host
        addressed by DNS name with no internal_address raises NodeIPUnknown)
    cluster_token(cluster) -> str

Health and members (roles/etcd/health.py; asked over TLS from one member with the healthcheck certificate)
    wait_healthy(cluster, transport, *, min_revision=None) -> seconds    the one health gate: every member healthy
                                                (and at min_revision or later under one leader); EtcdUnhealthy at
                                                the deadline. The etcd phases and the restore wait through it.
    asker(cluster, avoid=()) -> Host                the member to run etcdctl on
    leader(cluster, transport) -> Host | None       the member that leads now (None when etcd does not answer)

Membership (roles/etcd/members.py pure, roles/etcd/membership.py the custom phases)
    parse_member_list(stdout) -> [Member(id, name, peer_urls, client_urls, learner)]   (`member list -w json`)
    join_plan(...), initial_cluster_for(...), count_problem(members, leaving, force=) -> str | None
    AddMembers(names)     `keelson join`: member add from a healthy member, start with `existing`, one at a time
    StayingMembersHealthy(names), RemoveMembers(names)   `keelson remove`: member remove from a member that stays

Phases
    roles.pki.phases(cluster) -> list[Phase]    "PKI | …": make/refresh certs in state, upload when sha256 differs
    roles.etcd.phases(cluster) -> list[Phase]   "etcd | …": packages, config, unit, bootstrap (parallel start),
                                                quorum-aware restart (one member at a time, health gate between),
                                                final gate `etcdctl endpoint health --cluster` over TLS.
The apply never adds a member: an inventory member without data next to a running cluster is refused with the hint
`keelson join -i INVENTORY NAME` (roles/plans/join.py), rather than started with `new`.
"""

from __future__ import annotations

from roles.etcd.phases import phases

__all__ = ["phases"]
