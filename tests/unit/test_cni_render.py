"""The pod network manifests `roles/cni` renders: calico and canal pinned in one place, the inventory's pod CIDR in
them, every document well-formed. (That the real apiserver accepts them is tests/lab/test_cluster_restore.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.loader import parse_inventory
from provision.artifacts.catalog import release
from roles.cni.defaults import DEFAULTS
from roles.cni.render import manifests

LAB = (Path(__file__).parents[2] / "inventory" / "examples" / "lab.yaml").read_text()


def rendered(cni: str, pod_cidr: str = "10.244.0.0/16") -> dict[str, list[dict[str, Any]]]:
    data = yaml.safe_load(LAB)
    data["network"] = {"cni": cni, "pod_cidr": pod_cidr}
    cluster = parse_inventory(yaml.safe_dump(data))
    return {name: [d for d in yaml.safe_load_all(text) if d] for name, text in manifests(cluster).items()}


def images(docs: list[dict[str, Any]]) -> set[str]:
    found = set()
    for doc in docs:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            found.add(c["image"])
    return found


@pytest.mark.parametrize("cni", ["calico", "canal"])
def test_calico_and_canal_are_pinned_in_one_place_with_their_crds(cni: str) -> None:
    out = rendered(cni, "10.77.0.0/16")
    assert sorted(out) == [f"cni-{cni}", f"cni-{cni}-crds"]  # no kube-router: calico enforces NetworkPolicy itself
    crds = out[f"cni-{cni}-crds"]
    assert [d["metadata"]["name"] for d in crds] == [f"{c.plural}.crd.projectcalico.org" for c in DEFAULTS.calico_crds]
    assert {d["kind"] for d in crds} == {"CustomResourceDefinition"}
    docs = out[f"cni-{cni}"]
    calico = {f"quay.io/calico/{c}:{DEFAULTS.calico_version}" for c in ("cni", "node", "kube-controllers")}
    expected = calico | ({release("v1.37.2").flannel_image} if cni == "canal" else set())
    assert images(docs) == expected
    text = yaml.safe_dump_all(docs)
    assert "10.77.0.0/16" in text and "10.244.0.0/16" not in text
    daemonset = next(d for d in docs if d["kind"] == "DaemonSet")
    assert daemonset["metadata"]["name"] == ("canal" if cni == "canal" else "calico-node")
    assert {d["kind"] for d in docs} >= {"ServiceAccount", "ConfigMap", "ClusterRole", "DaemonSet", "Deployment"}


def test_flannel_keeps_kube_router_for_network_policy() -> None:
    assert sorted(rendered("flannel")) == ["cni-flannel", "network-policy-kube-router"]
