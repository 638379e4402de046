"""The OCI image writer: the layout's structure, every digest recomputed from the bytes, layer contents, config,
names, errors, and byte-identical output for the same inputs. (`ctr images import` of its output: tests/lab.)"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from provision.artifacts.oci import (
    ANNOTATION_NAME,
    ANNOTATION_REF,
    DEFAULT_PATH,
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST,
    Directory,
    File,
    Image,
    ImageConfig,
    ImageError,
    Layer,
    Symlink,
    normalize_name,
    read_index,
    write_archive,
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            out[m.name] = f.read() if f is not None else b""
        return out


def blob(files: dict[str, bytes], digest: str) -> bytes:
    return files[f"blobs/sha256/{digest.removeprefix('sha256:')}"]


def layer_tar(data: bytes) -> tarfile.TarFile:
    return tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)))


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "tool"
    path.parent.mkdir()
    path.write_bytes(b"\x7fELF" + bytes(range(256)) * 64)
    return path


def sample(binary: Path, name: str = "registry.k8s.io/pause:3.10.2") -> Image:
    return Image(
        name,
        layers=[
            Layer([File("/usr/local/bin/tool", source=binary, mode=0o755), Symlink("bin", "usr/local/bin")]),
            Layer([File("etc/motd", data=b"hello\n"), Directory("/tmp", mode=0o1777), Directory("data", uid=65532)]),
        ],
        config=ImageConfig(
            entrypoint=("/usr/local/bin/tool",),
            cmd=("--serve", "8080"),
            env=("MODE=test",),
            working_dir="/data",
            user="65532:65532",
            labels={"org.opencontainers.image.source": "keelson"},
            exposed_ports=("8080/tcp",),
        ),
    )


def test_layout_structure_and_every_digest(tmp_path: Path, binary: Path) -> None:
    out = tmp_path / "image.tar"
    [written] = write_archive([sample(binary)], out)
    files = members(out)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():  # every blob is named by its own sha256
        if name.startswith("blobs/sha256/") and data:
            assert sha(data) == "sha256:" + name.rsplit("/", 1)[1]

    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2 and index["mediaType"] == MEDIA_INDEX
    [desc] = index["manifests"]
    assert desc["mediaType"] == MEDIA_MANIFEST and desc["platform"] == {"architecture": "amd64", "os": "linux"}
    assert desc["annotations"] == {ANNOTATION_NAME: "registry.k8s.io/pause:3.10.2", ANNOTATION_REF: "3.10.2"}
    manifest_bytes = blob(files, desc["digest"])
    assert desc["size"] == len(manifest_bytes) and desc["digest"] == written.manifest_digest

    manifest = json.loads(manifest_bytes)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MEDIA_MANIFEST
    assert manifest["config"]["mediaType"] == MEDIA_CONFIG
    config_bytes = blob(files, manifest["config"]["digest"])
    assert manifest["config"]["size"] == len(config_bytes) and manifest["config"]["digest"] == written.config_digest
    config = json.loads(config_bytes)
    assert len(manifest["layers"]) == 2
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        data = blob(files, layer["digest"])
        assert layer["mediaType"] == MEDIA_LAYER_GZIP and layer["size"] == len(data)
        assert sha(gzip.decompress(data)) == diff_id  # diff_id = sha256 of the uncompressed layer tar
        assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert tuple(config["rootfs"]["diff_ids"]) == written.diff_ids
    assert config["rootfs"]["type"] == "layers"
    assert tuple(layer["digest"] for layer in manifest["layers"]) == written.layer_digests
    assert read_index(out) == index["manifests"]


def test_config_carries_the_runtime_settings(tmp_path: Path, binary: Path) -> None:
    out = tmp_path / "image.tar"
    [written] = write_archive([sample(binary)], out)
    config: dict[str, Any] = json.loads(blob(members(out), written.config_digest))
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["config"] == {
        "Entrypoint": ["/usr/local/bin/tool"],
        "Cmd": ["--serve", "8080"],
        "Env": [f"PATH={DEFAULT_PATH}", "MODE=test"],
        "WorkingDir": "/data",
        "User": "65532:65532",
        "Labels": {"org.opencontainers.image.source": "keelson"},
        "ExposedPorts": {"8080/tcp": {}},
    }
    assert len(config["history"]) == 2
    own_path = Image("x.io/a:1", layers=[Layer([])], config=ImageConfig(env=("PATH=/bin", "A=1")))
    [w] = write_archive([own_path], tmp_path / "own.tar")
    assert json.loads(blob(members(tmp_path / "own.tar"), w.config_digest))["config"] == {"Env": ["PATH=/bin", "A=1"]}


def test_layer_contents(tmp_path: Path, binary: Path) -> None:
    out = tmp_path / "image.tar"
    [written] = write_archive([sample(binary)], out)
    files = members(out)
    first = layer_tar(blob(files, written.layer_digests[0]))
    names = first.getnames()
    assert names == ["bin", "usr", "usr/local", "usr/local/bin", "usr/local/bin/tool"]  # parents added, sorted
    for m in first.getmembers():
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    tool = first.getmember("usr/local/bin/tool")
    assert tool.isfile() and tool.mode == 0o755
    extracted = first.extractfile(tool)
    assert extracted is not None and extracted.read() == binary.read_bytes()
    link = first.getmember("bin")
    assert link.issym() and link.linkname == "usr/local/bin"
    assert first.getmember("usr/local").isdir() and first.getmember("usr/local").mode == 0o755

    second = layer_tar(blob(files, written.layer_digests[1]))
    assert second.getnames() == ["data", "etc", "etc/motd", "tmp"]
    assert second.getmember("tmp").mode == 0o1777
    assert second.getmember("data").uid == 65532
    motd = second.extractfile("etc/motd")
    assert motd is not None and motd.read() == b"hello\n"


def test_same_inputs_give_the_same_bytes(tmp_path: Path, binary: Path) -> None:
    a, b = tmp_path / "a.tar", tmp_path / "b" / "b.tar"
    write_archive([sample(binary)], a)
    os.utime(binary, (1_000_000, 1_000_000))  # the source's own mtime does not leak into the image
    shuffled = sample(binary)
    shuffled = Image(
        shuffled.name,
        layers=[Layer(list(reversed(layer.entries))) for layer in shuffled.layers],
        config=shuffled.config,
    )
    write_archive([shuffled], b)
    assert a.read_bytes() == b.read_bytes()
    binary.write_bytes(binary.read_bytes() + b"!")
    write_archive([sample(binary)], b)
    assert a.read_bytes() != b.read_bytes()


def test_several_images_share_blobs(tmp_path: Path, binary: Path) -> None:
    out = tmp_path / "set.tar"
    first, second = sample(binary), sample(binary, "registry.k8s.io/kube-proxy:v1.34.1")
    w1, w2 = write_archive([first, second], out)
    assert w1.layer_digests == w2.layer_digests  # same layers: stored once
    index = read_index(out)
    assert [d["annotations"][ANNOTATION_NAME] for d in index] == [w1.name, w2.name]
    assert [d["annotations"][ANNOTATION_REF] for d in index] == ["3.10.2", "v1.34.1"]
    blobs = [n for n in members(out) if n.startswith("blobs/sha256/") and n != "blobs/sha256"]
    assert len(blobs) == 2 + 1 + 1  # two layers, one config (same config), one manifest (same manifest)
    assert w1.manifest_digest == w2.manifest_digest  # the same image under two names


@pytest.mark.parametrize(
    ("name", "full", "tag"),
    [
        ("registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause:3.10.2", "3.10.2"),
        ("registry.k8s.io/coredns/coredns:v1.12.0", "registry.k8s.io/coredns/coredns:v1.12.0", "v1.12.0"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "1.36"),
        ("flannel/flannel:v0.26.1", "docker.io/flannel/flannel:v0.26.1", "v0.26.1"),
        ("localhost/keelson/agnhost:2.52", "localhost/keelson/agnhost:2.52", "2.52"),
        ("registry.lab:5000/x/y:latest", "registry.lab:5000/x/y:latest", "latest"),
    ],
)
def test_names_are_normalised(name: str, full: str, tag: str) -> None:
    assert normalize_name(name) == (full, tag)


@pytest.mark.parametrize(
    "name",
    [
        "registry.k8s.io/pause",  # no tag
        "registry.k8s.io:5000/pause",  # a port is not a tag
        "registry.k8s.io/pause@sha256:" + "0" * 64,
        "registry.k8s.io/Pause:1",  # upper case path
        "registry.k8s.io/pause:-bad",
        "",
        "registry.k8s.io/pause:1 2",
    ],
)
def test_bad_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a valid reference"):
        normalize_name(name)
    with pytest.raises(ImageError):
        write_archive([Image(name, layers=[])], tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([File("a", data=b"1"), File("/a", data=b"2")], "twice in one layer"),
        ([File("../etc/passwd", data=b"")], "not inside the image"),
        ([File("/", data=b"")], "not inside the image"),
        ([File("a")], "either data or source"),
        ([File("a", data=b"", source=Path("/etc/hostname"))], "either data or source"),
        ([File("a", source=Path("/nonexistent/keelson"))], "cannot read /nonexistent/keelson"),
        ([File("a", data=b""), File("a/b", data=b"")], "not a directory"),
    ],
)
def test_bad_layers_are_refused_and_nothing_is_left(entries: list[Any], message: str, tmp_path: Path) -> None:
    out = tmp_path / "out" / "x.tar"
    with pytest.raises(ImageError, match=message):
        write_archive([Image("x.io/a:1", layers=[Layer(entries)])], out)
    assert list(out.parent.iterdir()) == []  # no archive, no temp files


def test_an_existing_archive_is_replaced_whole(tmp_path: Path, binary: Path) -> None:
    out = tmp_path / "image.tar"
    out.write_bytes(b"old")
    with pytest.raises(ImageError):
        write_archive([Image("x.io/a:1", layers=[Layer([File("a")])])], out)
    assert out.read_bytes() == b"old"  # a failed write leaves the old file
    write_archive([sample(binary)], out)
    assert read_index(out)[0]["annotations"][ANNOTATION_REF] == "3.10.2"


def test_no_images_and_duplicate_names_are_refused(tmp_path: Path, binary: Path) -> None:
    with pytest.raises(ImageError, match="no image"):
        write_archive([], tmp_path / "x.tar")
    with pytest.raises(ImageError, match="same image name twice"):
        write_archive([sample(binary, "busybox:1"), sample(binary, "docker.io/library/busybox:1")], tmp_path / "x.tar")
