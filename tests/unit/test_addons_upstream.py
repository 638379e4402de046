"""The addons from upstream's images (ingress-nginx, NFS, monitoring, logging, dashboard) rendered with their typed
arguments: pinned upstream image names, secure containers (and the named exceptions upstream needs), the settings
each one exposes, and the inventory's `addons.nfs` checks."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from addons.cluster import addon_args, images_of, objects_of
from addons.dashboard import DashboardArgs, dashboard_objects
from addons.grafana import GrafanaArgs, admin_secret, grafana_objects
from addons.ingress_nginx import IngressNginxArgs, ingress_nginx_objects
from addons.logs import LoggingArgs, logging_objects
from addons.monitoring import MonitoringArgs, monitoring_objects
from addons.nfs import NFSArgs, nfs_objects
from addons.render import as_yaml
from inventory.errors import InventoryError
from inventory.loader import parse_inventory
from inventory.model import NFS, Addons
from provision.artifacts.catalog import DEFAULT_KUBERNETES, RELEASES, release
from tests.unit.test_addons_render import EXAMPLES_LAB

RELEASE = release(DEFAULT_KUBERNETES)
REGISTRIES = ("registry.k8s.io/", "quay.io/", "docker.io/", "cr.fluentbit.io/")
WORKLOADS = ("Deployment", "DaemonSet", "Job")


def upstream_objects() -> list[dict[str, Any]]:
    return [
        *ingress_nginx_objects(IngressNginxArgs.for_release(RELEASE, admission_webhook=True)),
        *nfs_objects(NFSArgs.for_release(RELEASE, "10.30.0.40", "/exports/k8s")),
        *monitoring_objects(MonitoringArgs.for_release(RELEASE, loki_url="http://loki.logging.svc:3100")),
        *logging_objects(LoggingArgs.for_release(RELEASE)),
        *dashboard_objects(DashboardArgs.for_release(RELEASE)),
    ]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in by_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o["spec"]["template"]["spec"] for o in objects if o["kind"] in WORKLOADS]


def containers(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) of every workload's container."""
    return [(pod, c) for pod in pods(objects) for c in pod["containers"]]


def test_upstream_images_by_their_published_names_pinned_to_a_release() -> None:
    images = images_of(upstream_objects())
    assert images == {
        "registry.k8s.io/ingress-nginx/controller:v1.15.1",
        "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9",
        "registry.k8s.io/sig-storage/nfs-subdir-external-provisioner:v4.0.2",
        "quay.io/prometheus/prometheus:v3.14.0",
        "quay.io/prometheus/node-exporter:v1.12.1",
        "docker.io/grafana/grafana:13.2.0",
        "docker.io/grafana/loki:3.7.6",
        "cr.fluentbit.io/fluent/fluent-bit:5.1.1",
        "docker.io/kubernetesui/dashboard-api:1.13.0",
        "docker.io/kubernetesui/dashboard-web:1.7.0",
        "docker.io/kubernetesui/dashboard-auth:1.3.0",
        "docker.io/kubernetesui/dashboard-metrics-scraper:1.2.2",
        "docker.io/library/kong:3.8",
    }
    assert not images & set(RELEASE.set_addon_images)  # none of them is built into the artifact set
    assert all(i.startswith(REGISTRIES) and ":" in i.rsplit("/", 1)[-1] for i in images)
    assert all(c["imagePullPolicy"] == "IfNotPresent" for _, c in containers(upstream_objects()))
    for rel in RELEASES.values():  # one pin for every Kubernetes release
        assert rel.ingress_nginx_image == RELEASE.ingress_nginx_image and rel.grafana_image == RELEASE.grafana_image


# Where upstream's image needs otherwise, and why (said in the templates' comments too).
WRITABLE_ROOT = {"controller"}  # ingress-nginx writes its generated nginx.conf under /etc/nginx
RUNS_AS_ROOT = {"nfs-provisioner", "fluent-bit"}  # folders on the export as the server maps root; 0640 root logs


def test_every_container_is_locked_down_but_for_the_named_exceptions() -> None:
    for pod, c in containers(upstream_objects()):
        security, name = c["securityContext"], c["name"]
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert security["capabilities"].get("add", []) == (["NET_BIND_SERVICE"] if name == "controller" else []), name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert security["readOnlyRootFilesystem"] is (name not in WRITABLE_ROOT), name
        non_root = security.get("runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot", False))
        assert non_root is (name not in RUNS_AS_ROOT), name
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], name
        assert "privileged" not in security, name
    fluent_bit = named(upstream_objects(), "DaemonSet", "fluent-bit")["spec"]["template"]["spec"]
    assert fluent_bit["containers"][0]["securityContext"]["runAsUser"] == 0
    mounts = {m["mountPath"]: m for m in fluent_bit["containers"][0]["volumeMounts"]}
    assert mounts["/var/log"]["readOnly"] is True  # the host's logs, read-only


def test_ingress_nginx_on_traefik_s_node_ports_with_its_class() -> None:
    objects = ingress_nginx_objects(IngressNginxArgs.for_release(RELEASE))
    service = named(objects, "Service", "ingress-nginx-controller")
    assert service["spec"]["type"] == "NodePort"
    assert [(p["port"], p["nodePort"]) for p in service["spec"]["ports"]] == [(80, 30080), (443, 30443)]
    (ingress_class,) = by_kind(objects, "IngressClass")
    assert ingress_class["metadata"]["name"] == "nginx"
    assert ingress_class["spec"]["controller"] == "k8s.io/ingress-nginx"
    assert ingress_class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    (_, controller), *_ = containers(objects)
    assert (
        "--ingress-class=nginx" in controller["args"]
        and "--controller-class=k8s.io/ingress-nginx" in controller["args"]
    )
    # no webhook unless asked for: nothing refuses Ingresses while the controller is not up
    assert not by_kind(objects, "ValidatingWebhookConfiguration") and not by_kind(objects, "Job")
    assert not any(a.startswith("--validating-webhook") for a in controller["args"])
    hooked = ingress_nginx_objects(IngressNginxArgs.for_release(RELEASE, admission_webhook=True, http_node_port=31080))
    assert [j["metadata"]["name"] for j in by_kind(hooked, "Job")] == [
        "ingress-nginx-admission-create",
        "ingress-nginx-admission-patch",
    ]
    (webhook,) = by_kind(hooked, "ValidatingWebhookConfiguration")
    assert webhook["webhooks"][0]["clientConfig"]["service"]["name"] == "ingress-nginx-controller-admission"
    assert named(hooked, "Service", "ingress-nginx-controller")["spec"]["ports"][0]["nodePort"] == 31080


def test_nfs_storage_class_provisions_on_the_inventory_s_export() -> None:
    objects = nfs_objects(NFSArgs.for_release(RELEASE, "nas.lan", "/exports/k8s"))
    (storage_class,) = by_kind(objects, "StorageClass")
    assert storage_class["metadata"]["name"] == "nfs"
    assert storage_class["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    ((pod, container),) = containers(objects)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "PROVISIONER_NAME": storage_class["provisioner"],
        "NFS_SERVER": "nas.lan",
        "NFS_PATH": "/exports/k8s",
    }
    assert pod["volumes"] == [{"name": "nfs-root", "nfs": {"server": "nas.lan", "path": "/exports/k8s"}}]
    kept = by_kind(nfs_objects(NFSArgs.for_release(RELEASE, "10.0.0.5", "/x", archive_on_delete=True)), "StorageClass")
    assert kept[0]["parameters"] == {"archiveOnDelete": "true"}


def test_the_inventory_s_nfs_settings_reach_the_provisioner() -> None:
    settings = Addons(storage="nfs", nfs=NFS(server="10.30.0.40", path="/exports/k8s"))
    objects = objects_of(addon_args(settings, RELEASE)["storage"])
    assert by_kind(objects, "StorageClass")[0]["metadata"]["name"] == "nfs"
    assert pods(objects)[0]["volumes"][0]["nfs"] == {"server": "10.30.0.40", "path": "/exports/k8s"}


@pytest.mark.parametrize(
    ("addons", "field", "message"),
    [
        ("{storage: nfs}", "addons.storage", "storage: nfs needs addons.nfs: {server: <address>, path: <export>}"),
        ("{nfs: {server: nas, path: /x}}", "addons.nfs", "only read with storage: nfs (storage is local-path)"),
        ("{storage: nfs, nfs: {server: nas, path: exports}}", "addons.nfs.path", "the export's absolute path"),
        ("{storage: nfs, nfs: {server: nas, path: /a/../b}}", "addons.nfs.path", "the export's absolute path"),
        ("{storage: nfs, nfs: {server: '-o x', path: /x}}", "addons.nfs.server", "neither an IP address nor a DNS"),
        ("{storage: nfs, nfs: {path: /x}}", "addons.nfs.server", "required field is missing"),
    ],
)
def test_nfs_settings_errors_name_their_field(addons: str, field: str, message: str) -> None:
    text = EXAMPLES_LAB + f"addons: {addons}\n"
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, source="inv.yaml")
    (problem,) = info.value.problems
    assert problem.field == field and message in problem.message
    assert problem.line == len(text.splitlines())
    ok = parse_inventory(EXAMPLES_LAB + "addons: {storage: nfs, nfs: {server: NAS.lan., path: /exports/k8s}}\n")
    assert ok.addons.nfs == NFS(server="nas.lan", path="/exports/k8s")


def test_prometheus_scrapes_kubelets_cadvisor_and_apiserver_verifying_their_certificates() -> None:
    objects = monitoring_objects(MonitoringArgs.for_release(RELEASE))
    config = yaml.safe_load(named(objects, "ConfigMap", "prometheus")["data"]["prometheus.yml"])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "apiserver", "kubelet", "cadvisor", "node-exporter"}
    assert jobs["cadvisor"]["metrics_path"] == "/metrics/cadvisor"
    for name in ("apiserver", "kubelet", "cadvisor"):
        assert jobs[name]["scheme"] == "https"
        assert jobs[name]["tls_config"] == {"ca_file": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}
    rules = named(objects, "ClusterRole", "keelson-prometheus")["rules"]
    assert {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]} in rules
    assert all("create" not in r["verbs"] for r in rules)  # it only reads
    (daemonset,) = by_kind(objects, "DaemonSet")
    volumes = {v["name"]: v["hostPath"]["path"] for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    assert volumes == {"proc": "/proc", "sys": "/sys", "root": "/"}
    bare = monitoring_objects(MonitoringArgs.for_release(RELEASE, grafana=False, node_exporter=False))
    assert not by_kind(bare, "DaemonSet") and {d["metadata"]["name"] for d in by_kind(bare, "Deployment")} == {
        "prometheus"
    }


def _datasources(objects: list[dict[str, Any]]) -> dict[str, str]:
    text = named(objects, "ConfigMap", "grafana-datasources")["data"]["datasources.yaml"]
    return {d["type"]: d["url"] for d in yaml.safe_load(text)["datasources"]}


def test_one_grafana_shows_what_is_on() -> None:
    """monitoring alone: Prometheus; logging alone: its own Grafana on Loki; both: monitoring's Grafana on both."""
    both = Addons(monitoring=True, logging=True)
    planned = addon_args(both, RELEASE)
    monitoring, logging = objects_of(planned["monitoring"]), objects_of(planned["logging"])
    assert _datasources(monitoring) == {
        "prometheus": "http://prometheus.monitoring.svc:9090",
        "loki": "http://loki.logging.svc:3100",
    }
    assert not [d for d in by_kind(logging, "Deployment") if d["metadata"]["name"] == "grafana"]
    alone = objects_of(addon_args(Addons(logging=True), RELEASE)["logging"])
    assert _datasources(alone) == {"loki": "http://loki.logging.svc:3100"}
    assert _datasources(objects_of(addon_args(Addons(monitoring=True), RELEASE)["monitoring"])) == {
        "prometheus": "http://prometheus.monitoring.svc:9090"
    }
    fluent = yaml.safe_dump(named(logging, "ConfigMap", "fluent-bit")["data"])
    assert "loki.logging.svc" in fluent and "/var/log/containers/*.log" in fluent


def test_grafana_s_admin_login_comes_from_a_secret_never_a_default() -> None:
    args = GrafanaArgs.for_release(RELEASE, "monitoring", prometheus_url="http://p:9090")
    ((_, grafana),) = containers(grafana_objects(args))
    env = {e["name"]: e for e in grafana["env"]}
    for name in ("GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "grafana-admin"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"]["value"] == "false"
    secret = admin_secret(args, "s3cret")
    assert secret["metadata"] == {"name": "grafana-admin", "namespace": "monitoring"}
    assert secret["stringData"]["admin-password"] == "s3cret"
    with pytest.raises(ValueError, match="needs a data source"):
        grafana_objects(GrafanaArgs.for_release(RELEASE, "monitoring"))


def test_the_dashboard_grants_no_cluster_admin_by_default() -> None:
    objects = dashboard_objects(DashboardArgs.for_release(RELEASE))
    bindings = by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding")
    assert all(b["roleRef"]["name"] != "cluster-admin" for b in bindings)
    assert named(objects, "ClusterRoleBinding", "keelson-dashboard-user")["roleRef"]["name"] == "view"
    none = dashboard_objects(DashboardArgs.for_release(RELEASE, login_role=None))
    assert not [o for o in none if o["metadata"]["name"] in ("dashboard-user", "keelson-dashboard-user")]
    routes = yaml.safe_load(named(objects, "ConfigMap", "dashboard-kong")["data"]["kong.yml"])
    assert {s["name"]: s["host"] for s in routes["services"]} == {
        "auth": "dashboard-auth.kubernetes-dashboard.svc",
        "api": "dashboard-api.kubernetes-dashboard.svc",
        "web": "dashboard-web.kubernetes-dashboard.svc",
    }
    assert named(objects, "Service", "dashboard")["spec"]["type"] == "ClusterIP"


def test_every_addon_renders_a_valid_stream_of_distinct_objects() -> None:
    every = Addons(ingress="nginx", storage="nfs", nfs=NFS(server="n", path="/e"), monitoring=True, logging=True)
    objects = [o for args in addon_args(every, RELEASE).values() for o in objects_of(args)]
    objects += dashboard_objects(DashboardArgs.for_release(RELEASE))
    assert list(yaml.safe_load_all(as_yaml(objects))) == objects
    names = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))


def test_the_lab_s_dry_run_sends_all_eight_addons_and_their_namespaces() -> None:
    from addons.dryrun import every_addon, namespaces

    addons = every_addon(RELEASE)
    assert list(addons) == [
        "addons.storage: local-path",
        "addons.metrics: true",
        "addons.ingress: traefik",
        "addons.storage: nfs",
        "addons.ingress: nginx",
        "addons.monitoring: true",
        "addons.logging: true",
        "addons.dashboard: true",
    ]
    objects = [o for group in addons.values() for o in group]
    assert images_of(objects) == images_of(upstream_objects()) | set(RELEASE.set_addon_images) - {RELEASE.busybox_image}
    made = {o["metadata"]["name"] for o in by_kind(objects, "Namespace")}
    assert set(namespaces(objects)) == made | {"kube-system"}  # each addon's own namespace, and metrics-server's
    assert len(by_kind(objects, "Secret")) == 2  # both Grafanas' admin Secrets (a stand-in password)


def test_each_namespace_enforces_the_strictest_pod_security_its_pods_meet() -> None:
    def level(objects: list[dict[str, Any]]) -> str:
        (namespace,) = by_kind(objects, "Namespace")
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/enforce"]
        return str(labels["pod-security.kubernetes.io/enforce"])

    assert level(ingress_nginx_objects(IngressNginxArgs.for_release(RELEASE, admission_webhook=True))) == "restricted"
    assert level(dashboard_objects(DashboardArgs.for_release(RELEASE))) == "restricted"
    assert level(nfs_objects(NFSArgs.for_release(RELEASE, "n", "/e"))) == "baseline"  # root, an nfs volume
    assert level(logging_objects(LoggingArgs.for_release(RELEASE))) == "privileged"  # host paths
    assert level(monitoring_objects(MonitoringArgs.for_release(RELEASE))) == "privileged"  # node-exporter
    assert level(monitoring_objects(MonitoringArgs.for_release(RELEASE, node_exporter=False))) == "restricted"


def test_the_upstream_pins_leave_the_artifact_set_s_key_alone() -> None:
    """build.set_key hashes repr(release): a new upstream pin must not make every built set stale."""
    text = repr(RELEASE)
    assert "busybox=" in text and "traefik=" in text
    assert not any(name in text for name in ("ingress_nginx", "prometheus", "grafana", "loki", "fluent_bit", "kong"))
