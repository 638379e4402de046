"""The addons' manifests (addons/templates) rendered with their typed arguments: the release's images, secure
container settings, the inventory's choices; an air-gapped cluster refuses the addons whose images the artifact set
lacks, naming them. (The addons from upstream's images: test_addons_upstream.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from addons.cluster import AddonNotBuilt, addon_args, images_of, not_installed, objects_of, refuse_unbuilt, wanted
from addons.ingress import TraefikArgs, traefik_objects
from addons.metrics import MetricsServerArgs, metrics_server_objects
from addons.render import as_yaml
from addons.storage import LocalPathArgs, local_path_objects
from inventory.model import NFS, Addons
from provision.artifacts.catalog import DEFAULT_KUBERNETES, release

RELEASE = release(DEFAULT_KUBERNETES)
NFS_SETTINGS = NFS(server="nas.lan", path="/exports/k8s")
EXAMPLES_LAB = (Path(__file__).parents[2] / "inventory" / "examples" / "lab.yaml").read_text()


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for d in by_kind(objects, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]]


def all_objects() -> list[dict[str, Any]]:
    return [
        *local_path_objects(LocalPathArgs.for_release(RELEASE)),
        *metrics_server_objects(MetricsServerArgs.for_release(RELEASE)),
        *traefik_objects(TraefikArgs.for_release(RELEASE)),
    ]


def test_every_container_runs_an_image_of_the_artifact_set_pinned_by_version() -> None:
    images = {c["image"] for c in containers(all_objects())}
    assert images == {RELEASE.local_path_provisioner_image, RELEASE.metrics_server_image, RELEASE.traefik_image}
    assert all(":" in i.rsplit("/", 1)[-1] and not i.endswith(":latest") for i in images)
    assert all(c["imagePullPolicy"] == "IfNotPresent" for c in containers(all_objects()))


def test_containers_drop_every_capability_and_escalation() -> None:
    for container in containers(all_objects()):
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]
        assert security["seccompProfile"]["type"] == "RuntimeDefault", container["name"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
    for name in ("metrics-server", "traefik"):  # they need no root at all
        assert next(c for c in containers(all_objects()) if c["name"] == name)["securityContext"]["runAsNonRoot"]


def test_local_path_uses_the_release_helper_image_and_the_node_path() -> None:
    objects = local_path_objects(LocalPathArgs.for_release(RELEASE, path="/srv/volumes", default_class=False))
    config = by_kind(objects, "ConfigMap")[0]["data"]
    assert '"paths": ["/srv/volumes"]' in config["config.json"]
    assert f"image: {RELEASE.busybox_image}" in config["helperPod.yaml"]
    command = containers(objects)[0]["command"]
    assert command[command.index("--helper-image") + 1] == RELEASE.busybox_image
    (storage_class,) = by_kind(objects, "StorageClass")
    assert storage_class["provisioner"] == "rancher.io/local-path"
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    assert "annotations" not in storage_class["metadata"]  # not the default class when asked not to be
    default = by_kind(local_path_objects(LocalPathArgs.for_release(RELEASE)), "StorageClass")[0]
    assert default["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}


def test_metrics_server_verifies_the_kubelets_serving_certificates() -> None:
    args = containers(metrics_server_objects(MetricsServerArgs.for_release(RELEASE, resolution_s=30)))[0]["args"]
    assert "--kubelet-insecure-tls" not in args  # keelson's kubelets have CA-signed serving certificates
    assert "--metric-resolution=30s" in args
    (api,) = by_kind(metrics_server_objects(MetricsServerArgs.for_release(RELEASE)), "APIService")
    assert api["metadata"]["name"] == "v1beta1.metrics.k8s.io"


def test_traefik_serves_ingresses_on_fixed_node_ports_without_dashboard() -> None:
    objects = traefik_objects(TraefikArgs.for_release(RELEASE, http_node_port=31080, https_node_port=31443))
    (service,) = by_kind(objects, "Service")
    assert service["spec"]["type"] == "NodePort"
    assert [(p["port"], p["nodePort"]) for p in service["spec"]["ports"]] == [(80, 31080), (443, 31443)]
    (ingress_class,) = by_kind(objects, "IngressClass")
    assert ingress_class["spec"]["controller"] == "traefik.io/ingress-controller"
    assert ingress_class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    args = containers(objects)[0]["args"]
    assert "--providers.kubernetesingress=true" in args
    assert not any(a.startswith("--api") for a in args)  # no dashboard, no API entry point


def test_the_rendered_stream_is_valid_yaml_of_the_same_objects() -> None:
    import yaml

    objects = all_objects()
    assert list(yaml.safe_load_all(as_yaml(objects))) == objects
    names = [(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))


def test_libyaml_reads_every_manifest_as_pyyaml_s_own_safe_loader_does(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from addons import render

    every = Addons(ingress="nginx", storage="nfs", nfs=NFS_SETTINGS, monitoring=True, logging=True, dashboard=True)
    addons = [*addon_args(Addons(), RELEASE).values(), *addon_args(every, RELEASE).values()]
    assert render.LOADER is yaml.CSafeLoader  # PyYAML built with libyaml, as uv.lock's wheel is
    fast = [objects_of(args) for args in addons]
    monkeypatch.setattr(render, "LOADER", yaml.SafeLoader)
    assert fast == [objects_of(args) for args in addons]


def test_the_inventory_decides_which_addons_are_made() -> None:
    assert wanted(Addons()) == ["storage", "metrics", "ingress"]  # the defaults: all three proven in the lab
    assert wanted(Addons(ingress="none", storage="none", metrics=False)) == []
    assert wanted(Addons(ingress="none", metrics=False)) == ["storage"]
    every = Addons(ingress="nginx", storage="nfs", nfs=NFS_SETTINGS, monitoring=True, logging=True, dashboard=True)
    assert wanted(every) == ["storage", "metrics", "ingress", "monitoring", "logging", "dashboard"]
    kinds = {name: type(args).__name__ for name, args in addon_args(every, RELEASE).items()}
    assert kinds == {
        "storage": "NFSArgs",
        "metrics": "MetricsServerArgs",
        "ingress": "IngressNginxArgs",
        "monitoring": "MonitoringArgs",
        "logging": "LoggingArgs",
        "dashboard": "DashboardArgs",
    }


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (Addons(ingress="nginx"), f"addons.ingress: nginx (not in the set: {RELEASE.ingress_nginx_image})"),
        (
            Addons(storage="nfs", nfs=NFS_SETTINGS),
            f"addons.storage: nfs (not in the set: {RELEASE.nfs_provisioner_image})",
        ),
        (Addons(monitoring=True), "addons.monitoring: true (not in the set: docker.io/grafana/grafana:"),
        (Addons(logging=True, dashboard=True), "addons.logging: true (not in the set: cr.fluentbit.io/"),
        (Addons(logging=True, dashboard=True), "; addons.dashboard: true (not in the set: docker.io/kubernetesui/"),
    ],
)
def test_an_air_gapped_cluster_refuses_addons_whose_images_are_not_in_the_set(settings: Addons, named: str) -> None:
    with pytest.raises(AddonNotBuilt, match=re.escape(named)):
        refuse_unbuilt(settings, "local", RELEASE)
    for source in ("upstream", "mirror"):  # nodes that pull get upstream's images
        assert not_installed(settings, source, RELEASE) == []
        refuse_unbuilt(settings, source, RELEASE)


def test_the_set_s_addons_install_air_gapped() -> None:
    assert not_installed(Addons(), "local", RELEASE) == []
    assert not_installed(Addons(ingress="none", storage="none", metrics=False), "local", RELEASE) == []
    # the set's images are exactly what local-path, metrics-server and traefik run
    default = [objects_of(a) for a in addon_args(Addons(), RELEASE).values()]
    assert set().union(*(images_of(o) for o in default)) | {RELEASE.busybox_image} == set(RELEASE.set_addon_images)
