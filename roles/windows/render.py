"""Everything the Windows role renders from its templates: the PowerShell scripts its steps run (`*.ps1.j2`) and the
files they write (containerd's config, the CNI config, flannel's net-conf, kube-proxy's config and kubeconfig,
flanneld's start script). Pure: values in, text out. Windows paths and names come from `defaults.py`."""

from __future__ import annotations

import base64
import ntpath
from dataclasses import dataclass

from inventory.model import Cluster
from roles.control_plane import render as control_plane
from roles.templating import render
from roles.windows.defaults import DEFAULTS, WindowsDefaults
from roles.windows.facts import ps_list, psq

VIP_TOKEN = "@@KEELSON_SOURCE_VIP@@"  # noqa: S105 - a placeholder, not a password; kube-proxy's config is finished on the host, once the VIP is reserved


def _template(template: str, **values: object) -> str:
    return render(__file__, template, **values)


# -- scripts -------------------------------------------------------------------------------------------------------


def write_file(path: str, content: bytes, *, secret: bool = False, then: str = "") -> str:
    return _template(
        "write-file.ps1.j2",
        path=psq(path),
        folder=psq(ntpath.dirname(path)),
        content_b64=base64.b64encode(content).decode(),
        secret=secret,
        then=then,
    )


def restart(kind: str, name: str) -> str:
    """Restart a running service (`kind` "service") or scheduled task ("task")."""
    return _template("restart.ps1.j2", kind=kind, name=name, name_q=psq(name))


def folders(paths: list[str]) -> str:
    return _template("folders.ps1.j2", paths=ps_list(paths))


def feature(name: str) -> str:
    return _template("feature.ps1.j2", feature=name, feature_q=psq(name))


def firewall(rules: list[tuple[str, str, int]]) -> str:
    return _template("firewall.ps1.j2", rules=rules)


@dataclass(frozen=True)
class FetchFile:
    sha256: str
    dest: str


@dataclass(frozen=True)
class FetchArchive:
    name: str
    sha256: str
    members: tuple[tuple[str, str], ...]  # (name in the archive, destination)
    marker: str


@dataclass(frozen=True)
class FetchPayload:
    name: str
    sha256: str
    url: str


def _placed(dest: str) -> dict[str, str]:
    folder, name = ntpath.split(dest)
    return {"folder_q": psq(folder), "tmp_q": psq(ntpath.join(folder, f".{name}.keelson")), "dest_q": psq(dest)}


def fetch(
    payloads: list[FetchPayload],
    files: list[FetchFile],
    archives: list[FetchArchive],
    *,
    services: tuple[str, ...],
    tasks: tuple[str, ...],
    d: WindowsDefaults = DEFAULTS,
) -> str:
    return _template(
        "fetch.ps1.j2",
        download_dir=psq(d.download_dir),
        marker_dir=psq(d.marker_dir),
        payloads=[{"name": p.name, "sha256": p.sha256, "url": p.url, "url_q": psq(p.url)} for p in payloads],
        files=[{"sha256": f.sha256, **_placed(f.dest)} for f in files],
        archives=[
            {
                "name": a.name,
                "sha256": a.sha256,
                "marker_q": psq(a.marker),
                "dests": ps_list([dest for _, dest in a.members]),
                "members": [{"member_q": psq(m.replace("/", "\\")), **_placed(dest)} for m, dest in a.members],
            }
            for a in archives
        ],
        services=services,
        tasks=tasks,
    )


def containerd_service(d: WindowsDefaults = DEFAULTS) -> str:
    return _template(
        "containerd-service.ps1.j2",
        exe_q=psq(ntpath.join(d.containerd_dir, "containerd.exe")),
        config_q=psq(d.containerd_config),
        log_q=psq(ntpath.join(d.log_dir, "containerd.log")),
    )


def service(name: str, command: str, *, description: str, depends: str = "", start: bool = True) -> str:
    """Create or update a Windows service running `command`, restarted on failure; `start`: (re)start it now."""
    return _template(
        "service.ps1.j2",
        name=name,
        name_q=psq(name),
        command_q=psq(command),
        display_q=psq(f"Kubernetes {name}"),
        description=description,
        depends=depends,
        depends_q=psq(depends),
        restart_ms=DEFAULTS.service_restart_ms,
        start=start,
    )


def start_service(name: str) -> str:
    return _template("start-service.ps1.j2", name=name, name_q=psq(name))


def flanneld_task(d: WindowsDefaults = DEFAULTS) -> str:
    return _template(
        "flanneld-task.ps1.j2", task=d.flannel_task, task_q=psq(d.flannel_task), arguments_q=psq(task_arguments(d))
    )


def task_arguments(d: WindowsDefaults = DEFAULTS) -> str:
    return f"-NoProfile -NonInteractive -ExecutionPolicy Bypass -File {d.flannel_start}"


def join(reset: bool, d: WindowsDefaults = DEFAULTS) -> str:
    return _template(
        "join.ps1.j2",
        reset=reset,
        kubeadm_q=psq(ntpath.join(d.kube_dir, "kubeadm.exe")),
        config_q=psq(join_config_path(d)),
        marker_q=psq(d.join_marker),
    )


def kube_proxy_script(config: str, d: WindowsDefaults = DEFAULTS) -> str:
    """Wait for flanneld's subnet, reserve kube-proxy's source VIP in it, write `config` with the VIP filled in."""
    return _template(
        "kube-proxy.ps1.j2",
        timeout_s=d.network_timeout_s,
        subnet_file=d.flannel_subnet_file,
        subnet_file_q=psq(d.flannel_subnet_file),
        task=d.flannel_task,
        flannel_log=ntpath.join(d.log_dir, "flanneld.log"),
        vip_file_q=psq(source_vip_path(d)),
        cni_bin_q=psq(d.cni_bin_dir),
        host_local_q=psq(ntpath.join(d.cni_bin_dir, "host-local.exe")),
        network_name=d.network_name,
        ipam_dir_json=d.cni_ipam_dir.replace("\\", "\\\\"),
        config=config,
        config_file_q=psq(d.kube_proxy_config),
        vip_token=VIP_TOKEN,
    )


# -- files ---------------------------------------------------------------------------------------------------------


def join_config_path(d: WindowsDefaults = DEFAULTS) -> str:
    return ntpath.join(d.keelson_dir, "kubeadm-join-worker.yaml")


def source_vip_path(d: WindowsDefaults = DEFAULTS) -> str:
    return ntpath.join(d.kube_proxy_dir, "source-vip")


def join_config(
    cluster: Cluster,
    node: control_plane.NodeValues,
    *,
    token: str,
    ca_cert_hash: str,
    master_ips: dict[str, str],
    etcd_endpoints: list[str],
) -> str:
    """The Linux workers' JoinConfiguration (control_plane.render), with containerd's named pipe as the CRI."""
    return control_plane.kubeadm_config(
        cluster,
        "join-worker",
        node,
        token=token,
        ca_cert_hash=ca_cert_hash,
        master_ips=master_ips,
        etcd_endpoints=etcd_endpoints,
        cri_socket=DEFAULTS.containerd_pipe,
    )


def containerd_config(sandbox_image: str, d: WindowsDefaults = DEFAULTS) -> str:
    return _template(
        "containerd-config.toml.j2",
        version=d.containerd_version,
        sandbox_image=sandbox_image,
        cni_bin_dir=d.cni_bin_dir,
        cni_conf_dir=d.cni_conf_dir,
    )


def cni_conf(cluster: Cluster, d: WindowsDefaults = DEFAULTS) -> str:
    net = cluster.network
    return _template(
        "cni-flannel.conf.j2",
        network_name=d.network_name,
        pod_cidr=str(net.pod_cidr),
        service_cidr=str(net.service_cidr),
    )


def flannel_net_conf(cluster: Cluster, d: WindowsDefaults = DEFAULTS) -> str:
    return _template(
        "flannel-net-conf.json.j2",
        pod_cidr=str(cluster.network.pod_cidr),
        network_name=d.network_name,
        vni=d.vxlan_vni,
        port=d.vxlan_port,
    )


def start_flanneld(node_name: str, node_ip: str, d: WindowsDefaults = DEFAULTS) -> str:
    return _template(
        "start-flanneld.ps1.j2",
        node_name=node_name,
        node_name_q=psq(node_name),
        task=d.flannel_task,
        subnet_dir_q=psq(ntpath.dirname(d.flannel_subnet_file)),
        exe=ntpath.join(d.kube_dir, "flanneld.exe"),
        kubeconfig=d.kubelet_conf,
        node_ip=node_ip,
        net_conf=d.flannel_net_conf,
        subnet_file=d.flannel_subnet_file,
        log=ntpath.join(d.log_dir, "flanneld.log"),
    )


def kube_proxy_config(cluster: Cluster, node_name: str, source_vip: str, d: WindowsDefaults = DEFAULTS) -> str:
    return _template(
        "kube-proxy-config.yaml.j2",
        node_name=node_name,
        kubeconfig=d.kube_proxy_kubeconfig,
        pod_cidr=str(cluster.network.pod_cidr),
        network_name=d.network_name,
        source_vip=source_vip,
    )


def kubeconfig(cluster: Cluster, node_name: str, user: str, ca: bytes, cert: bytes, key: bytes) -> str:
    b64 = base64.b64encode
    return _template(
        "kubeconfig.yaml.j2",
        cluster_name=cluster.name,
        node_name=node_name,
        user=user,
        endpoint=cluster.api_endpoint,
        ca_b64=b64(ca).decode(),
        cert_b64=b64(cert).decode(),
        key_b64=b64(key).decode(),
    )


# -- service command lines -----------------------------------------------------------------------------------------


def kubelet_command(node_name: str, node_ip: str, labels: list[str], d: WindowsDefaults = DEFAULTS) -> str:
    """What the service control manager starts: kubelet with --windows-service and what kubeadm's flags file would
    hold on Linux (nothing reads that file on Windows), so the command line is the whole story."""
    k, kubelet = d.kubernetes_dir, d.kubelet_dir
    args = [
        f'"{ntpath.join(d.kube_dir, "kubelet.exe")}"',
        "--windows-service",
        f"--cert-dir={ntpath.join(kubelet, 'pki')}",
        f"--config={ntpath.join(kubelet, 'config.yaml')}",
        f"--bootstrap-kubeconfig={ntpath.join(k, 'bootstrap-kubelet.conf')}",
        f"--kubeconfig={d.kubelet_conf}",
        f"--hostname-override={node_name}",
        f"--node-ip={node_ip}",
        f"--container-runtime-endpoint={d.containerd_pipe}",
        "--cgroups-per-qos=false",
        '--enforce-node-allocatable=""',
        '--resolv-conf=""',
    ]
    if labels:
        args.append(f"--node-labels={','.join(labels)}")
    return " ".join(args)


def kube_proxy_command(d: WindowsDefaults = DEFAULTS) -> str:
    return f'"{ntpath.join(d.kube_dir, "kube-proxy.exe")}" --windows-service --config={d.kube_proxy_config}'
