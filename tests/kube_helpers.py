"""Helpers for lab tests on real Kubernetes: the artifact set (built once, cached), keelson's CLI, kubectl from the
set against the cluster's VIP with keelson's admin kubeconfig, and waits with deadlines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.artifacts.build import ArtifactSet, build
from provision.artifacts.catalog import DEFAULT_KUBERNETES, release
from provision.lab import Lab

KEELSON = [sys.executable, "-m", "keelson"]


def artifact_set() -> ArtifactSet:
    """The default release's set: instant when built, else built now. A build that already failed in this session
    (tests/conftest.py tried it before the test) is reported again, not repeated."""
    from tests.conftest import raise_if_build_failed

    raise_if_build_failed("artifacts")
    return build(release(DEFAULT_KUBERNETES), lambda event: None)


def agnhost(of: ArtifactSet | None = None) -> str:
    """The test image (agnhost: netexec, pause, connect…) of a set — the default one unless `of` — imported on every
    node. Its tag follows the Kubernetes release (v1.36.3's set has 2.63.0, v1.37.2's 2.66.1)."""
    return next(i.name for i in (of or artifact_set()).manifest.images if "agnhost" in i.name)


def keelson(*args: str, state: Path, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEELSON_STATE_DIR": str(state)}
    proc = subprocess.run([*KEELSON, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"keelson {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@dataclass
class Kubectl:
    binary: Path
    kubeconfig: Path

    def __call__(self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))


def kubectl_for(inventory: Path, state: Path, tmp: Path) -> Kubectl:
    kubeconfig = tmp / "admin.kubeconfig"
    keelson("kubeconfig", "-i", str(inventory), "-o", str(kubeconfig), state=state)
    found = artifact_set()
    binary = found.path / f"release/{found.manifest.kubernetes}/bin/linux/amd64/kubectl"
    return Kubectl(binary, kubeconfig)


@dataclass
class AppliedCluster:
    """A lab on which `keelson apply` of its own inventory finished, and kubectl for it through the VIP."""

    lab: Lab
    inventory: Path
    state: Path
    kubectl: Kubectl


def applied_lab(make_lab: Callable[..., Lab], tmp: Path, name: str, masters: int, workers: int) -> AppliedCluster:
    """The artifact set built (before any host boots), a fresh lab, `keelson apply` of its inventory."""
    artifact_set()
    lab = make_lab(name, masters=masters, workers=workers)
    state = tmp / "state"
    keelson("apply", "-i", str(lab.inventory_path), state=state)
    return AppliedCluster(lab, lab.inventory_path, state, kubectl_for(lab.inventory_path, state, tmp))


def wait_for(what: str, check: Callable[[], bool], timeout: float = 300, every: float = 1.0) -> None:
    """Poll `check` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def ready_nodes(kubectl: Kubectl) -> list[str]:
    nodes = kubectl.json("get", "nodes")["items"]
    return sorted(
        n["metadata"]["name"]
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
    )


def pod_ready(kubectl: Kubectl, namespace: str, name: str) -> bool:
    out = kubectl(
        "-n",
        namespace,
        "get",
        "pod",
        name,
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        check=False,
    )
    return out.strip() == "True"


def run_finished(stdout: str) -> dict[str, Any]:
    """The `run_finished` event of a `--json` run."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and '"run_finished"' in line:
            event: dict[str, Any] = json.loads(line)
            return event
    raise AssertionError(f"no run_finished event in:\n{stdout[-2000:]}")
