"""The runner's Windows half: a phase's facts batched, and its commands joined, in PowerShell for hosts with
`os: windows` (their transport runs PowerShell: `roles/engine/transport.py` `PowerShellTransport`).

The markers are the POSIX scripts' own, so `facts.split_batch` and `runner.failed_command` read both. What a Windows
command is: a PowerShell snippet that fails when it throws or leaves `$LASTEXITCODE` non-zero (native tools: check
their exit code, reset `$global:LASTEXITCODE = 0` after one whose failure is expected). Its output goes to stdout;
a native tool's stderr goes to the process's stderr (PowerShell 5.1 turns redirected native stderr into errors).

Windows cannot run here: these scripts are parsed with tree-sitter-powershell in tests and sent, byte for byte,
to a labelled stand-in `powershell` on a lab host (tests/lab/test_windows_transport.py); they never ran on Windows.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from roles.engine.command import Command
from roles.engine.facts import Fact

PROLOGUE = (
    "$ProgressPreference = 'SilentlyContinue'\n"
    "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding($false)\n"
)


def batch_script(facts: Sequence[Fact[Any]], nonce: str | None = None) -> tuple[str, str]:
    """One script printing every fact between markers (`facts.batch_script`'s twin). Returns (script, nonce)."""
    nonce = nonce or secrets.token_hex(6)
    parts = [PROLOGUE]
    for i, fact in enumerate(facts):
        parts.append(
            f'"`n@@KF-{nonce} {i}@@"\n'
            "$global:LASTEXITCODE = 0; $rc = 0\n"
            "try {\n"
            "  & {\n"
            "    $ErrorActionPreference = 'Stop'\n"
            f"{fact.command()}\n"
            "  } 2>$null | Out-String -Stream\n"
            "  if ($global:LASTEXITCODE) { $rc = $global:LASTEXITCODE }\n"
            "} catch { $rc = 1 }\n"
            f'"`n@@KR-{nonce} {i} $rc@@"\n'
        )
    return "".join(parts), nonce


def host_script(commands: Sequence[Command], nonce: str) -> str:
    """The commands in order, each in its own script block; the first failure stops the script and is marked
    (`runner.host_script`'s twin)."""
    parts = [PROLOGUE]
    for i, command in enumerate(commands):
        parts.append(
            f'"`n@@KC-{nonce} {i}@@"\n'
            "$global:LASTEXITCODE = 0; $rc = 0\n"
            "try {\n"
            "  & {\n"
            "    $ErrorActionPreference = 'Stop'\n"
            f"{command.script}\n"
            "  } | Out-String -Stream\n"
            "  if ($global:LASTEXITCODE) { $rc = $global:LASTEXITCODE }\n"
            "} catch { $_ | Out-String -Stream; $rc = 1 }\n"
            f'if ($rc -ne 0) {{ "`n@@KX-{nonce} {i} $rc@@"; exit $rc }}\n'
        )
    parts.append("exit 0\n")
    return "".join(parts)


# A script whose -EncodedCommand would not fit a Windows command line goes through stdin instead, and so does every
# script holding a secret (a command line is visible to every user of the host). cmd.exe, Windows OpenSSH's default
# shell, takes at most 8191 characters.
MAX_COMMAND_LINE = 8000
# What runs in their place: read the script (UTF-8, base64: ASCII, whatever the console's code page) from stdin.
STDIN_BOOTSTRAP = (
    "$ErrorActionPreference = 'Stop'\n"
    "$b = [Console]::In.ReadToEnd()\n"
    "$s = [System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($b.Trim()))\n"
    "& ([scriptblock]::Create($s))\n"
    "exit $LASTEXITCODE\n"
)
