"""Facts of a Windows worker: each one PowerShell command (run through the runner's PowerShell batch,
roles/engine/powershell.py) and a pure parser that tolerates junk. Windows cannot run here: the parsers are tested
on output in the shapes these commands print, and the commands are parsed with tree-sitter-powershell."""

from __future__ import annotations

from dataclasses import dataclass

from roles.engine.facts import Fact


def psq(value: str) -> str:
    """A PowerShell single-quoted string literal: nothing inside it is expanded."""
    return "'" + value.replace("'", "''") + "'"


def ps_list(values: tuple[str, ...] | list[str]) -> str:
    return "@(" + ", ".join(psq(v) for v in values) + ")"


def _hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True)
class FileHashes(Fact[dict[str, str]]):
    """sha256 (lower-case) of each of `paths` that exists as a file."""

    paths: tuple[str, ...]

    @property
    def key(self) -> str:
        return "win-hashes:" + ",".join(self.paths)

    def command(self) -> str:
        return (
            f"foreach ($p in {ps_list(self.paths)}) {{ if (Test-Path -LiteralPath $p -PathType Leaf) {{ "
            '$h = (Get-FileHash -LiteralPath $p -Algorithm SHA256).Hash.ToLower(); "$h $p" } }'
        )

    def parse(self, stdout: str, rc: int) -> dict[str, str]:
        out = {}
        for line in stdout.splitlines():
            digest, _, path = line.strip().partition(" ")
            if _hex64(digest) and path in self.paths:
                out[path] = digest
        return out


@dataclass(frozen=True)
class TextFiles(Fact[dict[str, str]]):
    """The content of each of `paths` that exists (small text files: markers), base64 so any byte survives."""

    paths: tuple[str, ...]

    @property
    def key(self) -> str:
        return "win-texts:" + ",".join(self.paths)

    def command(self) -> str:
        return (
            f"foreach ($p in {ps_list(self.paths)}) {{ if (Test-Path -LiteralPath $p -PathType Leaf) {{ "
            '$b = [Convert]::ToBase64String([IO.File]::ReadAllBytes($p)); "$b $p" } }'
        )

    def parse(self, stdout: str, rc: int) -> dict[str, str]:
        import base64
        import binascii

        out = {}
        for line in stdout.splitlines():
            b64, _, path = line.strip().partition(" ")
            if path in self.paths:
                try:
                    out[path] = base64.b64decode(b64, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    continue
        return out


@dataclass(frozen=True)
class Folders(Fact[frozenset[str]]):
    """Which of `paths` exist as folders."""

    paths: tuple[str, ...]

    @property
    def key(self) -> str:
        return "win-folders:" + ",".join(self.paths)

    def command(self) -> str:
        return (
            f"foreach ($p in {ps_list(self.paths)}) {{ if (Test-Path -LiteralPath $p -PathType Container) {{ $p }} }}"
        )

    def parse(self, stdout: str, rc: int) -> frozenset[str]:
        return frozenset(line.strip() for line in stdout.splitlines() if line.strip() in self.paths)


@dataclass(frozen=True)
class ServiceInfo:
    state: str  # Running | Stopped | StartPending | …
    start_mode: str  # Auto | Manual | Disabled
    path: str  # the command line the service control manager starts (ImagePath)


@dataclass(frozen=True)
class Services(Fact[dict[str, ServiceInfo]]):
    """The Windows services among `names` that exist: state, start mode and command line."""

    names: tuple[str, ...]

    @property
    def key(self) -> str:
        return "win-services:" + ",".join(self.names)

    def command(self) -> str:
        return (
            f"foreach ($n in {ps_list(self.names)}) {{ "
            "$s = Get-CimInstance -ClassName Win32_Service -Filter \"Name='$n'\"; "
            'if ($s) { "$($s.Name)|$($s.State)|$($s.StartMode)|$($s.PathName)" } }'
        )

    def parse(self, stdout: str, rc: int) -> dict[str, ServiceInfo]:
        out = {}
        for line in stdout.splitlines():
            parts = line.strip().split("|", 3)
            if len(parts) == 4 and parts[0] in self.names:
                out[parts[0]] = ServiceInfo(parts[1], parts[2], parts[3])
        return out


@dataclass(frozen=True)
class FeatureState(Fact[str]):
    """A Windows Server feature's install state: Installed | InstallPending | Available | Removed | unknown."""

    name: str

    @property
    def key(self) -> str:
        return f"win-feature:{self.name}"

    def command(self) -> str:
        return f"(Get-WindowsFeature -Name {psq(self.name)}).InstallState.ToString()"

    def parse(self, stdout: str, rc: int) -> str:
        value = stdout.strip()
        return value if value in ("Installed", "InstallPending", "Available", "Removed") else "unknown"


@dataclass(frozen=True)
class TaskInfo:
    state: str  # Ready | Running | Disabled
    arguments: str  # the action's arguments (what changes when keelson's start script changes)


@dataclass(frozen=True)
class ScheduledTask(Fact[TaskInfo | None]):
    """A scheduled task's state and its first action's arguments; None when there is no such task."""

    name: str

    @property
    def key(self) -> str:
        return f"win-task:{self.name}"

    def command(self) -> str:
        return (
            f"$t = Get-ScheduledTask -TaskName {psq(self.name)} -ErrorAction SilentlyContinue; "
            'if ($t) { "$($t.State)|$($t.Actions[0].Arguments)" }'
        )

    def parse(self, stdout: str, rc: int) -> TaskInfo | None:
        state, sep, arguments = stdout.strip().partition("|")
        if not sep or state not in ("Ready", "Running", "Disabled", "Queued"):
            return None
        return TaskInfo(state, arguments)


@dataclass(frozen=True)
class FirewallRules(Fact[frozenset[str]]):
    """Which of the firewall rules named `names` exist."""

    names: tuple[str, ...]

    @property
    def key(self) -> str:
        return "win-firewall:" + ",".join(self.names)

    def command(self) -> str:
        return (
            f"foreach ($n in {ps_list(self.names)}) {{ "
            "if (Get-NetFirewallRule -Name $n -ErrorAction SilentlyContinue) { $n } }"
        )

    def parse(self, stdout: str, rc: int) -> frozenset[str]:
        return frozenset(line.strip() for line in stdout.splitlines() if line.strip() in self.names)
