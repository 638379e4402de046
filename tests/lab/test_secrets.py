"""Secrets never leave their owner, watched from inside a lab host while keelson works on it.

A watcher (python3 on the host itself) reads every process's /proc/PID/cmdline and every /tmp/.keelson-* upload's
mode in a loop, from before the apply until after it. The apply writes a small secret (a TLS key's size: as a
command-line argument it would fit) in one phase and a large one (a multi-MiB upload) in another.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from pathlib import Path

import pytest
import yaml

from inventory.loader import load_inventory, parse_inventory
from inventory.model import Cluster
from provision.lab import Lab
from roles.engine.command import Command, Upload
from roles.engine.context import RunContext
from roles.engine.phase import Phase
from roles.engine.runner import RunReport, run_plan
from roles.engine.step import CommandStep, FileStep

pytestmark = pytest.mark.lab

WATCHER = r"""
import json, os, sys, time
nonce, needles_path, out = sys.argv[1:4]
needles = [bytes.fromhex(x) for x in open(needles_path).read().split()]
control = ("kw-control-" + nonce).encode()
stop, sampled = "/run/kw-stop-" + nonce, "/run/kw-sampled-" + nonce
found, modes, passes, control_passes = [], {}, 0, 0
open("/run/kw-ready-" + nonce, "w").close()
deadline = time.monotonic() + 900
while not os.path.exists(stop) and time.monotonic() < deadline:
    saw_control = False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        saw_control = saw_control or control in cmd
        found += [cmd[:160].decode(errors="replace") for n in needles if n in cmd]
    entries = list(os.scandir("/tmp"))
    if os.path.isdir("/var/tmp/.keelson-uploads-root"):
        entries += list(os.scandir("/var/tmp/.keelson-uploads-root"))
    for entry in entries:
        if entry.name.startswith(".keelson-") or entry.path.startswith("/var/tmp/"):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            modes.setdefault(entry.path, []).append("%o %d" % (st.st_mode & 0o7777, st.st_size))
    passes += 1
    control_passes += saw_control
    if control_passes >= 2:  # a whole pass began after the control process existed, and saw it
        open(sampled, "w").close()
    time.sleep(0.001)
json.dump({"found": found, "modes": modes, "passes": passes, "control_passes": control_passes}, open(out + ".t", "w"))
os.rename(out + ".t", out)
"""


@pytest.fixture(scope="module")
def slab(lab_factory) -> Lab:
    lab: Lab = lab_factory("e-secret", masters=1, workers=1)
    return lab


def run(cluster: Cluster, state: Path, plan: list[Phase]) -> RunReport:
    return run_plan(plan, RunContext(cluster, state))


def wait_for(lab: Lab, host: str, path: str, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while lab.run(host, f"test -e {path}", check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{what}: {path} never appeared on {host}"


def start_watcher(lab: Lab, host: str, nonce: str, needles: list[bytes]) -> str:
    script = base64.b64encode(WATCHER.encode()).decode()
    hexes = " ".join(n.hex() for n in needles)
    lab.run(
        host,
        f"echo {script} | base64 -d > /root/kw-{nonce}.py && echo {hexes} > /root/kw-{nonce}.needles && "
        f"systemd-run --quiet --unit kw-{nonce} python3 /root/kw-{nonce}.py {nonce} /root/kw-{nonce}.needles "
        f"/root/kw-{nonce}.json",
    )
    wait_for(lab, host, f"/run/kw-ready-{nonce}", "the watcher")
    return f"/root/kw-{nonce}.json"


def stop_watcher(lab: Lab, host: str, nonce: str, out: str) -> dict[str, object]:
    lab.run(host, f"touch /run/kw-stop-{nonce}")
    wait_for(lab, host, out, "the watcher's report")
    report: dict[str, object] = json.loads(lab.run(host, f"cat {out}").stdout)
    return report


def test_secrets_never_in_a_command_line_and_uploads_private_from_creation(slab: Lab, tmp_path: Path) -> None:
    cluster = load_inventory(slab.inventory_path)
    nonce = secrets.token_hex(4)
    token = secrets.token_hex(24).encode()
    small = b"-----BEGIN TEST PRIVATE KEY-----\n" + token + b"\n" + os.urandom(1500) + b"\n-----END-----\n"
    large = token + os.urandom(12 * 1024 * 1024)
    needles = [token, base64.b64encode(small)[:64], base64.b64encode(large)[:64]]
    out = start_watcher(slab, "m1", nonce, needles)
    hold = CommandStep(
        "test | hold the phase until the watcher has looked",
        (),
        lambda ctx, facts: False,
        lambda ctx, facts: [
            Command(
                f"timeout 120 bash -c 'until [ -e \"$1\" ]; do sleep 0.05; done' kw-control-{nonce} "
                f"/run/kw-sampled-{nonce}"
            )
        ],
    )
    on_m1 = lambda c: c.masters[:1]  # noqa: E731 - a host selector
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(os.urandom(8 * 1024 * 1024))
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    install = CommandStep(
        "test | install an uploaded artifact",
        (),
        lambda ctx, facts: False,
        lambda ctx, facts: [
            Command(
                f'echo "{digest}  $KEELSON_UPLOADS/artifact-{nonce}" | sha256sum -c --quiet && '
                f'install -m 0600 "$KEELSON_UPLOADS/artifact-{nonce}" /etc/keelson-test/artifact.bin',
                uploads=(Upload(artifact, f"artifact-{nonce}"),),
            )
        ],
    )
    plan = [
        Phase("Small secret", on_m1, [FileStep("/etc/keelson-test/tls.key", small, 0o600, secret=True), hold]),
        Phase("Large secret", on_m1, [FileStep("/etc/keelson-test/blob.key", large, 0o600, secret=True)]),
        Phase("Upload", on_m1, [install]),
    ]
    try:
        report = run(cluster, tmp_path, plan)
    finally:
        seen = stop_watcher(slab, "m1", nonce, out)
    assert report.ok, report.hosts
    assert seen["control_passes"] >= 2  # type: ignore[operator]  # the watcher saw the phase's own processes
    assert seen["found"] == []  # no process ever had the secret (raw or base64) in its command line
    modes: dict[str, list[str]] = seen["modes"]  # type: ignore[assignment]
    assert modes, "the watcher saw no upload"
    scripts = [samples for path, samples in modes.items() if path.startswith("/tmp/")]
    biggest = max(scripts, key=lambda samples: max(int(s.split()[1]) for s in samples))
    sizes = {int(sample.split()[1]) for sample in biggest}
    assert max(sizes) > len(large) and len(sizes) > 1  # it watched the large script upload grow, while it was written
    part = modes.get(f"/var/tmp/.keelson-uploads-root/artifact-{nonce}.part", [])
    assert len({sample.split()[1] for sample in part}) > 1  # and the artifact's .part while it was written
    assert {sample.split()[0] for samples in modes.values() for sample in samples} == {"600"}, modes
    listing = slab.run("m1", "stat -c '%a %U %G' /etc/keelson-test/tls.key /etc/keelson-test/blob.key; ls -a /tmp")
    assert listing.stdout.splitlines()[:2] == ["600 root root", "600 root root"]
    assert ".keelson-" not in listing.stdout  # every upload is gone
    digests = slab.run("m1", "sha256sum < /etc/keelson-test/tls.key; sha256sum < /etc/keelson-test/blob.key")
    assert digests.stdout.split()[::2] == [hashlib.sha256(small).hexdigest(), hashlib.sha256(large).hexdigest()]


def _as_user(lab: Lab, host: str, user: str, sudoers: str | None) -> Cluster:
    pub = lab.key_path.with_suffix(".pub").read_text().strip()
    grant = f"echo '{sudoers}' > /etc/sudoers.d/{user}; chmod 0440 /etc/sudoers.d/{user}; " if sudoers else ""
    lab.run(
        host,
        f"id {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}; {grant}"
        f"install -d -m 700 -o {user} -g {user} ~{user}/.ssh; echo '{pub}' > ~{user}/.ssh/authorized_keys; "
        f"chown {user}:{user} ~{user}/.ssh/authorized_keys",
    )
    doc = yaml.safe_load(lab.inventory_path.read_text())
    for entry in doc["hosts"]:
        if entry["name"] == host:
            entry["ssh"] = {"user": user}
    return parse_inventory(yaml.safe_dump(doc))


def test_a_sudo_user_uploads_as_itself_and_root_moves_it_in(slab: Lab, tmp_path: Path) -> None:
    cluster = _as_user(slab, "w1", "deploy", "deploy ALL=(ALL) NOPASSWD: ALL")
    key = b"-----BEGIN TEST KEY-----\n" + secrets.token_hex(32).encode() + b"\n"
    plan = [Phase("Key", lambda c: [c.host("w1")], [FileStep("/etc/keelson-test/sudo.key", key, 0o600, secret=True)])]
    report = run(cluster, tmp_path, plan)
    assert report.ok, report.hosts
    out = slab.run("w1", "stat -c '%a %U %G' /etc/keelson-test/sudo.key; sha256sum < /etc/keelson-test/sudo.key")
    assert out.stdout.split()[:4] == ["600", "root", "root", hashlib.sha256(key).hexdigest()]
    assert ".keelson-" not in slab.run("w1", "ls -a /tmp").stdout
    again = run(cluster, tmp_path, plan)
    assert again.ok and again.changed_hosts == [] and again.ssh_commands["w1"] == 1


def test_an_upload_whose_script_never_starts_is_removed(slab: Lab, tmp_path: Path) -> None:
    """A user sudo refuses: the private script was uploaded, bash never ran its cleanup; keelson removes it."""
    cluster = _as_user(slab, "w1", "nosudo", None)
    key = b"-----BEGIN TEST KEY-----\n" + secrets.token_hex(32).encode() + b"\n"
    plan = [Phase("Key", lambda c: [c.host("w1")], [FileStep("/etc/keelson-test/never.key", key, 0o600, secret=True)])]
    report = run(cluster, tmp_path, plan)
    assert not report.ok and "sudo" in " ".join(report.hosts["w1"].errors)
    assert ".keelson-" not in slab.run("w1", "ls -a /tmp").stdout
    assert slab.run("w1", "test -e /etc/keelson-test/never.key", check=False).returncode != 0
