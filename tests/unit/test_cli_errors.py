"""Every user error is a message, never a traceback: every `keelson` verb run with bad input through the installed
console script (a real process, as a user runs it), checked for its exit code, a message fragment, and no
`Traceback` on stdout or stderr.

Each case fails before any lab is touched (bad arguments, missing or broken files, bad inventories) or talks only
to loopback addresses on a port nobody listens on. Lab state goes to a temp KEELSON_LAB_ROOT, HOME to a temp folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.backup_helpers import write_snapshot

ROOT = Path(__file__).parents[2]
SCRIPT = Path(sys.executable).parent / "keelson"  # the console script the project installs
KUBESPRAY = ROOT / "tests" / "unit" / "samples" / "kubespray-hosts.yaml"
LOOPBACK = ("127.0.0.11", "127.0.0.12", "127.0.0.13")

# (id, argv, exit code, fragment of stderr+stdout). In argv: {ws} is the case's workspace (see `workspace`),
# {loop} an inventory of three masters on loopback addresses whose SSH port nobody listens on, {badkh} the same
# inventory with a malformed known_hosts line, {sample} a kubespray hosts.yaml.
CASES: list[tuple[str, list[str], int, str]] = [
    # keelson itself
    ("unknown-verb", ["nosuch"], 2, "No such command 'nosuch'"),
    ("unknown-option", ["--bogus"], 2, "No such option"),
    # inventory
    ("validate-missing", ["inventory", "validate", "{ws}/nope.yaml"], 2, "nope.yaml: file not found"),
    ("validate-folder", ["inventory", "validate", "{ws}"], 2, ": is a directory, not a file"),
    (
        "validate-not-utf8",
        ["inventory", "validate", "{ws}/latin1.yaml"],
        2,
        "latin1.yaml:2: not UTF-8 text (byte 0xe9)",
    ),
    ("validate-bad-yaml", ["inventory", "validate", "{ws}/broken.yaml"], 2, "YAML syntax error"),
    ("validate-no-argument", ["inventory", "validate"], 2, "Missing argument"),
    ("show-missing", ["inventory", "show", "{ws}/nope.yaml"], 2, "file not found"),
    ("import-not-utf8", ["inventory", "import", "kubespray", "{ws}/latin1.yaml"], 2, "latin1.yaml:2: not UTF-8 text"),
    ("import-folder", ["inventory", "import", "k0sctl", "{ws}"], 2, ": is a directory, not a file"),
    ("import-missing", ["inventory", "import", "k0sctl", "{ws}/nope.yaml"], 2, "nope.yaml: file not found"),
    ("import-unknown-kind", ["inventory", "import", "ansible", "{sample}"], 2, "Invalid value"),
    ("import-bad-vip", ["inventory", "import", "kubespray", "{sample}", "--vip", "garbage"], 2, "is not an IPv4"),
    ("import-out-is-folder", ["inventory", "import", "kubespray", "{sample}", "-o", "{ws}"], 1, ": is a directory"),
    (
        "import-out-under-file",
        ["inventory", "import", "kubespray", "{sample}", "-o", "{ws}/latin1.yaml/x.yaml"],
        1,
        "latin1.yaml is a file, not a folder",
    ),
    (
        "import-out-unwritable",
        ["inventory", "import", "kubespray", "{sample}", "-o", "/proc/keelson/x.yaml"],
        1,
        "cannot make the folder /proc/keelson",
    ),
    # lab (each refused before anything is built or booted)
    ("lab-up-two-masters", ["lab", "up", "--masters", "2", "--name", "cli-bad"], 1, "3 or 5 masters"),
    ("lab-up-bad-name", ["lab", "up", "--name", "Bad_Name"], 1, "lab name 'Bad_Name'"),
    ("lab-up-too-many-workers", ["lab", "up", "--workers", "999", "--name", "cli-bad"], 1, "at most 159 workers"),
    ("lab-up-not-a-number", ["lab", "up", "--masters", "three"], 2, "--masters"),
    ("lab-ssh-no-lab", ["lab", "ssh", "m1", "--name", "cli-none"], 1, "no lab named 'cli-none'"),
    ("lab-kill-no-lab", ["lab", "kill", "m1", "--name", "cli-none"], 1, "no lab named 'cli-none'"),
    ("lab-start-no-lab", ["lab", "start", "m1", "--name", "cli-none"], 1, "no lab named 'cli-none'"),
    ("lab-down-bad-option", ["lab", "down", "--force"], 2, "No such option"),
    ("lab-prepare-extra-argument", ["lab", "prepare", "m1"], 2, "unexpected extra argument"),
    ("lab-status-bad-option", ["lab", "status", "--all"], 2, "No such option"),
    # bench (arguments checked before any lab is touched)
    ("bench-lab-zero-hosts", ["bench", "lab", "--hosts", "0"], 2, "0 is not between 1 and 164"),
    ("bench-lab-too-many", ["bench", "lab", "--hosts", "500"], 2, "500 is not between 1 and 164"),
    ("bench-vip-zero-rounds", ["bench", "vip", "--rounds", "0"], 2, "--rounds"),
    ("bench-etcd-zero-runs", ["bench", "etcd", "--runs", "0"], 2, "--runs"),
    ("bench-apply-bad-option", ["bench", "apply", "--hosts", "3"], 2, "No such option"),
    ("bench-apply-cluster-bad-option", ["bench", "apply", "--cluster", "--masters", "5"], 2, "No such option"),
    ("bench-apply-cluster-extra-arg", ["bench", "apply", "--cluster", "m1"], 2, "unexpected extra argument"),
    ("bench-join-bad-option", ["bench", "join", "--hosts", "3"], 2, "No such option"),
    # backup
    ("verify-missing", ["backup", "verify", "{ws}/nope.db.gz"], 3, "nope.db.gz: no such file"),
    ("verify-folder", ["backup", "verify", "{ws}"], 3, ": not a file"),
    ("verify-corrupt", ["backup", "verify", "{ws}/corrupt.db.gz"], 3, "not a valid etcd snapshot"),
    ("now-missing-inventory", ["backup", "now", "-i", "{ws}/nope.yaml"], 2, "file not found"),
    ("now-unreachable", ["backup", "now", "-i", "{loop}"], 1, "no member took a snapshot"),
    ("list-unreachable", ["backup", "list", "-i", "{loop}"], 1, "no etcd member answered"),
    ("list-not-utf8", ["backup", "list", "-i", "{ws}/latin1.yaml"], 2, "not UTF-8 text"),
    # restore (the snapshot is refused before the confirmation and before any member is touched)
    (
        "restore-http",
        ["restore", "-i", "{loop}", "--snapshot", "http://example.invalid/s.db.gz", "--yes"],
        2,
        "http:// is not supported",
    ),
    ("restore-missing-file", ["restore", "-i", "{loop}", "--snapshot", "{ws}/nope.db.gz"], 3, "no such file"),
    ("restore-bad-s3-url", ["restore", "-i", "{loop}", "--snapshot", "s3://bucket", "--yes"], 1, "s3://bucket/key"),
    (
        "restore-corrupt",
        ["restore", "-i", "{loop}", "--snapshot", "{ws}/corrupt.db.gz", "--yes"],
        3,
        "not a valid etcd snapshot",
    ),
    ("restore-no-snapshot", ["restore", "-i", "{loop}"], 2, "Missing option '--snapshot'"),
    # plan and apply
    ("plan-no-inventory", ["plan"], 2, "Missing option '--inventory'"),
    ("plan-missing-inventory", ["plan", "-i", "{ws}/nope.yaml"], 2, "file not found"),
    ("plan-unknown-only", ["plan", "-i", "{loop}", "--only", "nosuch"], 2, "roles: validate, common, containerd"),
    ("apply-unknown-only", ["apply", "-i", "{loop}", "--only", "kubelet"], 2, "--only kubelet: no such role or phase"),
    ("apply-unknown-host", ["apply", "-i", "{loop}", "--hosts", "zz"], 2, "--hosts names unknown hosts: zz"),
    ("apply-zero-concurrency", ["apply", "-i", "{loop}", "--concurrency", "0"], 2, "--concurrency"),
    ("plan-state-dir-is-file", ["plan", "-i", "{loop}", "--state-dir", "{ws}/latin1.yaml"], 2, "cannot use it"),
    ("plan-unreachable", ["plan", "-i", "{loop}", "--only", "containerd"], 1, "cannot connect to 127.0.0.11"),
    ("apply-unreachable", ["apply", "-i", "{loop}", "--only", "common"], 1, "cannot connect to 127.0.0.12"),
    ("plan-bad-known-hosts", ["plan", "-i", "{badkh}"], 1, "known_hosts:2: malformed known_hosts line"),
    ("apply-bad-known-hosts", ["apply", "-i", "{badkh}"], 1, "known_hosts:2: malformed known_hosts line"),
    # day-2 commands
    ("status-missing-inventory", ["status", "-i", "{ws}/nope.yaml"], 2, "nope.yaml: file not found"),
    ("status-unreachable", ["status", "-i", "{loop}"], 1, "etcd: no member answered"),
    ("kubeconfig-no-inventory", ["kubeconfig"], 2, "Missing option '-i' / '--inventory'"),
    (
        "kubeconfig-no-ca",
        ["kubeconfig", "-i", "{loop}", "--state-dir", "{ws}/empty-state"],
        1,
        "Kubernetes CA is not in the state dir",
    ),
    ("exec-no-command", ["exec", "-i", "{loop}"], 2, "Missing argument 'COMMAND...'"),
    ("exec-unknown-host", ["exec", "-i", "{loop}", "--hosts", "zz", "--", "true"], 2, "unknown hosts: zz"),
    ("exec-unknown-role", ["exec", "-i", "{loop}", "--role", "nosuch", "--", "true"], 2, "--role nosuch: no such role"),
    ("exec-zero-timeout", ["exec", "-i", "{loop}", "--timeout", "0", "--", "true"], 2, "--timeout 0"),
    ("exec-unreachable", ["exec", "-i", "{loop}", "--", "true"], 1, "3 unreachable (m1, m2, m3)"),
    ("certs-check-missing-inventory", ["certs", "check", "-i", "{ws}/nope.yaml"], 2, "nope.yaml: file not found"),
    ("certs-check-negative-days", ["certs", "check", "-i", "{loop}", "--warn-days", "-1"], 2, "--warn-days"),
    ("certs-check-unreachable", ["certs", "check", "-i", "{loop}"], 1, "3 hosts could not be read"),
    ("certs-renew-missing-inventory", ["certs", "renew", "-i", "{ws}/nope.yaml"], 2, "nope.yaml: file not found"),
    ("certs-renew-unknown-host", ["certs", "renew", "-i", "{loop}", "--hosts", "zz"], 2, "--hosts names unknown hosts"),
    ("certs-renew-unreachable", ["certs", "renew", "-i", "{loop}"], 1, "cannot connect to 127.0.0.1"),
    # lifecycle (names checked against the inventory before anything is connected to)
    ("join-no-host", ["join", "-i", "{loop}"], 2, "Missing argument 'HOST...'"),
    ("join-unknown-host", ["join", "-i", "{loop}", "zz"], 2, "not in the inventory: zz"),
    ("join-master-unreachable", ["join", "-i", "{loop}", "m1"], 1, "cannot connect to 127.0.0.1"),
    ("remove-unknown-host", ["remove", "-i", "{loop}", "zz"], 2, "not in the inventory: zz"),
    ("remove-master-even", ["remove", "-i", "{loop}", "m2"], 2, "m2: refused, 3 → 2 etcd members is an even count"),
    ("remove-masters-quorum", ["remove", "-i", "{loop}", "m2", "m3"], 2, "3 → 1 etcd members loses quorum"),
    (
        "remove-every-master-forced",
        ["remove", "-i", "{loop}", "m1", "m2", "m3", "--force"],
        2,
        "m1, m2, m3: that is every master of the cluster",
    ),
    ("reset-no-host", ["reset", "-i", "{loop}", "--yes"], 2, "name the hosts to reset, or --all"),
    ("reset-host-and-all", ["reset", "-i", "{loop}", "m1", "--all", "--yes"], 2, "name hosts or give --all, not both"),
    ("reset-master", ["reset", "-i", "{loop}", "m3", "--yes"], 2, "m3: a master or etcd member of the cluster"),
    ("reset-unreachable", ["reset", "-i", "{loop}", "--all", "--yes"], 1, "cannot connect to 127.0.0.1"),
    ("verify-negative-days", ["verify", "-i", "{loop}", "--warn-days", "-1"], 2, "--warn-days"),
    ("verify-unreachable", ["verify", "-i", "{loop}"], 1, "FAIL etcd: no etcd member accepts"),
    ("verify-restore-unreachable", ["verify", "-i", "{loop}", "--chaos"], 1, "FAIL restore: no etcd member answered"),
    ("verify-bad-scratch", ["verify", "-i", "{loop}", "--scratch", "cloud"], 2, "Invalid value for '--scratch'"),
    ("verify-old-failover-flag", ["verify", "-i", "{loop}", "--no-failover"], 2, "No such option: --no-failover"),
    ("upgrade-no-to", ["upgrade", "-i", "{loop}"], 2, "Missing option '--to'"),
    ("upgrade-bad-version", ["upgrade", "-i", "{loop}", "--to", "latest"], 2, "'latest' is not a Kubernetes version"),
    (
        "upgrade-to-not-the-inventory",
        ["upgrade", "-i", "{loop}", "--to", "v1.36.3"],
        2,
        "--to v1.36.3 but the inventory says kubernetes.version: v1.37.2",
    ),
    (
        "upgrade-zero-drain",
        ["upgrade", "-i", "{loop}", "--to", "v1.37.2", "--drain-timeout", "0"],
        2,
        "--drain-timeout",
    ),
    (
        "upgrade-unreachable",
        ["upgrade", "-i", "{loop}", "--to", "1.37.2"],
        1,
        "upgrade not started: nothing was changed; once what is reported above is dealt with: "
        "keelson upgrade -i {loop} --to v1.37.2",
    ),
    # artifacts (each refused before anything is built, fetched or written)
    (
        "artifacts-build-bad-version",
        ["artifacts", "build", "--kubernetes", "garbage"],
        1,
        "'garbage' is not a Kubernetes version",
    ),
    ("artifacts-build-unknown", ["artifacts", "build", "--kubernetes", "v0.0.1"], 1, "v0.0.1 has no build recipe"),
    (
        "artifacts-build-provider-alone",
        ["artifacts", "build", "--without-kubernetes-provider"],
        2,
        "--without-kubernetes-provider goes with --pulumi",
    ),
    ("artifacts-verify-bad-version", ["artifacts", "verify", "--kubernetes", "1.x"], 1, "is not a Kubernetes version"),
    ("artifacts-pin-no-version", ["artifacts", "pin"], 1, "which release? --kubernetes vX.Y.Z, or --pulumi"),
    ("artifacts-pin-unknown", ["artifacts", "pin", "--kubernetes", "v0.0.1"], 1, "v0.0.1 has no build recipe"),
    ("artifacts-list-bad-option", ["artifacts", "list", "--bogus"], 2, "No such option"),
    # pulumi (`keelson pulumi` hands every argument to the built CLI: see test_pulumi_without_its_toolset)
    ("pulumi-env-bad-option", ["pulumi-env", "--bogus"], 2, "No such option"),
    ("bench-pulumi-bad-option", ["bench", "pulumi", "--bogus"], 2, "No such option"),
    ("bench-artifacts-bad-option", ["bench", "artifacts", "--cold=maybe"], 2, "--cold"),
]


def free_port() -> int:
    """A TCP port nobody listens on at any of the loopback addresses the inventory uses."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((LOOPBACK[0], 0))
            port = int(probe.getsockname()[1])
        if all(_bindable(address, port) for address in LOOPBACK):
            return port
    raise AssertionError("no free loopback port")


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def inventory(port: int, known_hosts: str) -> str:
    """The example lab inventory, moved onto loopback addresses whose SSH `port` nobody listens on."""
    data = yaml.safe_load((ROOT / "inventory" / "examples" / "lab.yaml").read_text())
    data["name"] = "loop"
    data["ssh"] = {"user": "root", "port": port, "key": "key", "known_hosts": known_hosts}
    data["hosts"] = [{"name": f"m{i}", "address": a, "roles": ["master"]} for i, a in enumerate(LOOPBACK, 1)]
    data["control_plane"] = {"vip": "127.0.0.100/24", "load_balancer": "keepalived+haproxy"}
    data["backups"] = {"schedule": "hourly", "retention": 4, "targets": [{"kind": "ssh", "host": "m3", "path": "/b"}]}
    return yaml.safe_dump(data)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    ws = tmp_path_factory.mktemp("cli-errors")
    port = free_port()
    (ws / "key").write_text("not used: nothing answers on the port\n")
    (ws / "known_hosts").write_text("")
    (ws / "loop.yaml").write_text(inventory(port, "known_hosts"))
    (ws / "bad_known_hosts").write_text(
        "# the next line's key is cut short\n127.0.0.11 ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB\n"
    )
    (ws / "badkh.yaml").write_text(inventory(port, "bad_known_hosts"))
    (ws / "latin1.yaml").write_bytes("name: lab\n# café\n".encode("latin-1"))
    (ws / "broken.yaml").write_text("name: [unclosed\n")
    corrupt = bytearray(write_snapshot(ws / "corrupt.db.gz").read_bytes())
    corrupt[len(corrupt) // 2] ^= 0xFF
    (ws / "corrupt.db.gz").write_bytes(bytes(corrupt))
    (ws / "home").mkdir()
    (ws / "labs").mkdir()
    return {
        "ws": str(ws),
        "loop": str(ws / "loop.yaml"),
        "badkh": str(ws / "badkh.yaml"),
        "sample": str(KUBESPRAY),
    }


def test_pulumi_without_its_toolset(tmp_path: Path) -> None:
    """`keelson pulumi` and `keelson pulumi-env` with an empty artifact cache say how to build the engine."""
    env = {**os.environ, "KEELSON_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path), "COLUMNS": "200"}
    for argv in (["pulumi", "up"], ["pulumi-env"]):
        proc = keelson(*argv, env=env)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, (argv, proc.returncode, out)
        assert "is not built with the current recipes" in out and "keelson artifacts build --pulumi" in out, out
        assert "Traceback" not in out


def test_every_verb_is_covered() -> None:
    """The table names every command `keelson --help` (and each group's --help) lists."""
    tried = {tuple(argv[:2]) if argv[0] in GROUPS else (argv[0],) for _, argv, _, _ in CASES}
    tried |= {("pulumi",)}  # test_pulumi_without_its_toolset
    listed = set()
    for group in ("", *GROUPS):
        names = _commands(keelson(*([group] if group else []), "--help").stdout)
        listed |= {(group, n) if group else (n,) for n in names if n not in GROUPS}
    assert listed, "no commands found in --help"
    assert listed <= tried, sorted(listed - tried)


GROUPS = ("inventory", "lab", "bench", "backup", "artifacts", "certs")


def _commands(help_text: str) -> list[str]:
    section = help_text.split("Commands:", 1)[1] if "Commands:" in help_text else ""
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()]


def keelson(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def results(workspace: dict[str, str]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case's process, run a few at a time (several wait on connection retries to the loopback port)."""
    env = {
        **os.environ,
        "HOME": f"{workspace['ws']}/home",  # the default state dir goes here, not into the user's home
        "KEELSON_LAB_ROOT": f"{workspace['ws']}/labs",  # no real lab is ever looked up or touched
        "COLUMNS": "200",  # rich wraps long messages at the terminal width
    }

    def one(case: tuple[str, list[str], int, str]) -> subprocess.CompletedProcess[str]:
        return keelson(*(a.format(**workspace) for a in case[1]), env=env)

    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(zip([c[0] for c in CASES], pool.map(one, CASES), strict=True))


@pytest.mark.parametrize(("case", "code", "fragment"), [(c[0], c[2], c[3]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_message_and_an_exit_code(
    results: dict[str, subprocess.CompletedProcess[str]], workspace: dict[str, str], case: str, code: int, fragment: str
) -> None:
    proc = results[case]
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    assert proc.returncode == code, output
    assert fragment.format(**workspace) in " ".join(output.split()), output
