"""The cluster add-ons in an artifact set (metrics-server, local-path-provisioner and the busybox its helper pods
run, traefik): catalog names, recipes, and the images `images()` writes — names, entrypoints, layers — from stand-in
parts, so no Go is built here (the real set: `keelson artifacts build`)."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from provision.artifacts.catalog import RELEASES, release
from provision.artifacts.gotool import BuildError
from provision.artifacts.images import ImageParts, busybox_version, debian_upstream_version, images
from provision.artifacts.oci import ANNOTATION_NAME, write_archive
from provision.artifacts.parts import MARKER, Part
from provision.artifacts.recipes import RAISED, TRAEFIK_CODENAME, recipes_for

REL = release("v1.37.2")
APPLETS = ("sh", "mkdir", "rm", "ls")
ADDONS = {
    "registry.k8s.io/metrics-server/metrics-server:v0.8.0": ("/metrics-server", "metrics-server"),
    "docker.io/rancher/local-path-provisioner:v0.0.30": ("/usr/bin/local-path-provisioner", "local-path-provisioner"),
    "docker.io/library/traefik:v3.6.12": ("/usr/local/bin/traefik", "traefik"),
}


def test_every_release_names_the_addon_images() -> None:
    for rel in RELEASES.values():
        assert rel.metrics_server_image == "registry.k8s.io/metrics-server/metrics-server:v0.8.0"
        assert rel.local_path_provisioner_image == "docker.io/rancher/local-path-provisioner:v0.0.30"
        assert rel.busybox_image == "docker.io/library/busybox:1.35.0"
        assert rel.traefik == "v3.6.12" and rel.traefik_image == "docker.io/library/traefik:v3.6.12"


@pytest.mark.parametrize(
    ("component", "module", "package", "stamp"),
    [
        (
            "metrics-server",
            "sigs.k8s.io/metrics-server",
            "sigs.k8s.io/metrics-server/cmd/metrics-server",
            "-X k8s.io/client-go/pkg/version.gitVersion=v0.8.0",
        ),
        (
            "local-path-provisioner",
            "github.com/rancher/local-path-provisioner",
            "github.com/rancher/local-path-provisioner",
            "-X main.VERSION=v0.0.30",
        ),
        (
            "traefik",
            "github.com/traefik/traefik/v3",
            "github.com/traefik/traefik/v3/cmd/traefik",
            "-X github.com/traefik/traefik/v3/pkg/version.Version=3.6.12",
        ),
    ],
)
def test_addon_recipes_are_pinned_and_stamped(component: str, module: str, package: str, stamp: str) -> None:
    for rel in RELEASES.values():
        [recipe] = [r for r in recipes_for(rel) if r.component == component]
        assert [t.package for t in recipe.targets] == [package] and recipe.targets[0].output == component
        assert stamp in recipe.ldflags and recipe.raise_deps == RAISED
        gomod = (recipe.dir / "go.mod").read_text()
        assert re.search(rf"^require {re.escape(module)} {recipe.version}\b", gomod, re.M)
        assert re.search(rf"^tool {re.escape(package)}$", gomod, re.M)
        for raised in RAISED:  # the raised dependencies are what the recipe's go.mod requires, or newer
            name, version = raised.split("@")
            found = re.search(rf"^\s+{re.escape(name)} (v\S+)", gomod, re.M)
            assert found is None or _semver(found.group(1)) >= _semver(version), (component, name)
        assert f"{module} {recipe.version}/go.mod h1:" in (recipe.dir / "go.sum").read_text()


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("-", maxsplit=1)[0]))


@pytest.mark.parametrize(
    ("debian", "upstream"),
    [("1:1.35.0-4+deb12u1+b1", "1.35.0"), ("1.36.1-9", "1.36.1"), ("2:1.37.0", "1.37.0"), ("1.30.1-6+b3", "1.30.1")],
)
def test_debian_upstream_version(tmp_path: Path, debian: str, upstream: str) -> None:
    part = _part(tmp_path, "debian-busybox", {}, {"packages": {"busybox-static": debian}})
    assert debian_upstream_version(part, "busybox-static") == upstream == busybox_version(part)
    with pytest.raises(BuildError, match="has no Debian package iptables"):
        debian_upstream_version(part, "iptables")


def _part(root: Path, name: str, binaries: dict[str, str], info: dict[str, object] | None = None) -> Part:
    """A stand-in part: `bin/<name>` files (tiny shell scripts) and, where given, its part.json."""
    path = root / name
    (path / "bin").mkdir(parents=True)
    for binary, script in binaries.items():
        (path / "bin" / binary).write_text(f"#!/bin/sh\n{script}\n")
        (path / "bin" / binary).chmod(0o755)
    if info is not None:
        (path / MARKER).write_text(json.dumps(info))
    return Part(name, path)


def _parts(root: Path, busybox: str = "1:1.35.0-4+deb12u1+b1") -> ImageParts:
    debs = root / "debian-iptables" / "root" / "usr" / "sbin"
    debs.mkdir(parents=True)
    (debs / "xtables-nft-multi").write_text("#!/bin/sh\n")
    return ImageParts(
        kubernetes=_part(root, "kubernetes", {"kube": "echo kube", "agnhost": "echo agnhost"}),
        pause=_part(root, "pause", {"pause": "echo pause"}),
        coredns=_part(root, "coredns", {"coredns": "echo coredns"}),
        flannel=_part(root, "flannel", {"flanneld": "echo flanneld"}),
        kube_router=_part(root, "kube-router", {"kube-router": "echo kube-router"}),
        iptables=Part("debian-iptables", root / "debian-iptables"),
        busybox=_busybox(root, busybox),
        metrics_server=_part(root, "metrics-server", {"metrics-server": "echo metrics-server"}),
        local_path_provisioner=_part(root, "local-path-provisioner", {"local-path-provisioner": "echo lpp"}),
        traefik=_part(root, "traefik", {"traefik": "echo traefik"}),
    )


def _busybox(root: Path, version: str) -> Part:
    """Debian's busybox-static as the part has it: root/bin/busybox, whose `--list` names its applets."""
    path = root / "debian-busybox"
    (path / "root" / "bin").mkdir(parents=True)
    binary = path / "root" / "bin" / "busybox"
    binary.write_text("#!/bin/sh\nprintf '%s\\n' busybox " + " ".join(APPLETS) + "\n")
    binary.chmod(0o755)
    (path / MARKER).write_text(json.dumps({"packages": {"busybox-static": version}}))
    return Part("debian-busybox", path)


Layers = dict[str, list[list[tarfile.TarInfo]]]


def _written(tmp_path: Path) -> tuple[dict[str, Any], Layers, dict[str, bytes]]:
    """Write the set's images from stand-in parts; per image name: its config and its layers' members, and the
    files of every layer by path."""
    out = tmp_path / "images.tar"
    write_archive(list(images(REL, _parts(tmp_path / "parts"))), out)
    with tarfile.open(out) as tar:
        blobs = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]

    def blob(digest: str) -> bytes:
        return blobs["blobs/sha256/" + digest.removeprefix("sha256:")]

    configs: dict[str, Any] = {}
    layers: Layers = {}
    contents: dict[str, bytes] = {}
    for desc in json.loads(blobs["index.json"])["manifests"]:
        name = desc["annotations"][ANNOTATION_NAME]
        manifest = json.loads(blob(desc["digest"]))
        configs[name] = json.loads(blob(manifest["config"]["digest"]))
        layers[name] = []
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"])))) as tar:
                members = tar.getmembers()
                layers[name].append(members)
                for m in members:
                    if m.isfile():
                        contents[m.name] = tar.extractfile(m).read()  # type: ignore[union-attr]
    return configs, layers, contents


def test_the_set_s_images_include_the_addons(tmp_path: Path) -> None:
    configs, layers, contents = _written(tmp_path)
    assert set(ADDONS) | {REL.busybox_image, REL.agnhost_image, REL.pause_image} <= set(configs)
    assert set(REL.set_addon_images) == set(ADDONS) | {REL.busybox_image}  # what an air-gapped cluster can install
    assert len(configs) == 13  # the 9 of before and the 4 add-ons' images
    for name, (entrypoint, binary) in ADDONS.items():
        config = configs[name]["config"]
        assert config["Entrypoint"] == [entrypoint] and "Cmd" not in config
        base, own = layers[name]  # the base layer (passwd, group, nsswitch, /tmp) and the binary alone
        assert {"etc/passwd", "etc/group", "etc/nsswitch.conf", "tmp"} <= {m.name for m in base}
        [member] = [m for m in own if m.isfile()]
        assert member.name == entrypoint.lstrip("/") and member.mode == 0o755
        assert contents[member.name] == f"#!/bin/sh\necho {'lpp' if binary.startswith('local') else binary}\n".encode()
    assert configs["registry.k8s.io/metrics-server/metrics-server:v0.8.0"]["config"]["User"] == "65534"
    assert "User" not in configs["docker.io/rancher/local-path-provisioner:v0.0.30"]["config"]
    assert "User" not in configs["docker.io/library/traefik:v3.6.12"]["config"]  # the pod spec decides, as upstream's


def test_the_busybox_image_is_debian_s_busybox_on_the_base_layer(tmp_path: Path) -> None:
    configs, layers, _ = _written(tmp_path)
    config = configs["docker.io/library/busybox:1.35.0"]["config"]
    assert config["Cmd"] == ["sh"] and "Entrypoint" not in config  # as Docker's busybox image
    base, tools = layers["docker.io/library/busybox:1.35.0"]
    assert "etc/passwd" in {m.name for m in base}
    links = {m.name: m.linkname for m in tools if m.issym()}
    assert links == {f"bin/{a}": "busybox" for a in APPLETS}
    assert [m.name for m in tools if m.isfile()] == ["bin/busybox"]
    # the same busybox layer as agnhost's and flannel's: stored once in the tarball
    assert [m.name for m in layers[REL.agnhost_image][1]] == [m.name for m in tools]


def test_a_busybox_of_another_version_is_refused(tmp_path: Path) -> None:
    parts = _parts(tmp_path, busybox="1:1.36.1-9")
    with pytest.raises(BuildError, match=r"busybox here is 1\.36\.1.*docker\.io/library/busybox:1\.35\.0"):
        list(images(REL, parts))


def test_traefik_is_stamped_as_its_release_and_keeps_upstream_s_forks() -> None:
    """Stamped as goreleaser stamps a release (`traefik version` prints 3.6.12, ramequin, a fixed date), and the
    recipe's go.mod carries traefik's three fork replaces (a dependency's replace directives do not apply)."""
    upstream_forks = {
        "github.com/abbot/go-http-auth": "github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e",
        "github.com/gorilla/mux": "github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59",
        "github.com/mailgun/minheap": "github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595",
    }
    for rel in RELEASES.values():
        [recipe] = [r for r in recipes_for(rel) if r.component == "traefik"]
        version = "-X github.com/traefik/traefik/v3/pkg/version."
        assert recipe.ldflags == (
            f"{version}Version=3.6.12",
            f"{version}Codename={TRAEFIK_CODENAME}",
            f"{version}BuildDate=1970-01-01T00:00:00Z",
        )
        gomod = (recipe.dir / "go.mod").read_text()
        replaces = dict(re.findall(r"^\t(\S+) => (\S+ \S+)$", gomod, re.M))
        assert replaces == upstream_forks
        # v3.7's unpublished config module is not in the graph
        assert "github.com/traefik/traefik/dynamic/ext" not in gomod
        for fork in upstream_forks.values():
            assert f"{fork}/go.mod h1:" in (recipe.dir / "go.sum").read_text()
