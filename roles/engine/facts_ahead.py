"""Each host's fact batch sent before the plan is built: the previous run's script, run as soon as the login is done.

A no-op's one SSH command per host is its fact batch (roles/engine/fact_cache.py), and the runner can build that
script only once the roles are imported and the plan made: ~0.3-0.4 s of a 1.2 s no-op went to the batches after
start-up, the hosts' own work on their cores with keelson waiting. The script a host's first batch runs is the same
from run to run while the inventory, the selection and keelson are (it lists the facts every phase reads, not their
values), so the CLI keeps it (`FactsAhead.save`) and the next run sends it from the login's thread
(ConnectionPool.connect_ahead), overlapping the imports and the plan as the logins do.

Its output is used only when the script the run builds for that host's first batch is the very text that was sent
(`FactCache`: same facts, same order, the same nonce), and only while the run has changed nothing on any host; it
is then the output that script would have given, read a fraction of a second earlier, with keelson having done
nothing to any host in between. Otherwise it is dropped and the run's own script runs as before: a stale or foreign
answer is never read. Whatever was sent counts as an SSH command of the host's (a no-op whose script matched: one
per host; one that did not: two).

Each send gets a new nonce (the markers a batch's output is split by): the kept script is a template with
`NONCE_SLOT` where the nonce was, so an earlier run's markers, seen in a command line on the host, cannot be
forged into this run's output. Fact scripts hold no secrets: they travel as a plain `bash -c` argument, visible in
the host's process list (a script that carries a secret goes privately, `Transport.run(private=True)`, and fact
batches never do). The file is the user's own (0600 in a 0700 folder); one that cannot be read or written is
ignored, as the dataclass code cache is (keelson/codecache.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

from roles.engine.transport import MAX_ARG_SCRIPT, CommandResult, Transport

NONCE_SLOT = "@@KEELSON-NONCE@@"
FORMAT = 1
MAX_FILES = 64  # kept files in the folder (one per inventory and selection): past this, the oldest are removed


class Sent:
    """One host's kept script as sent now, with this run's nonce; `result()` waits for its output (None: it failed)."""

    def __init__(self, script: str, nonce: str) -> None:
        self.script, self.nonce = script, nonce
        self._result: Future[CommandResult | None] = Future()

    def run(self, transport: Transport) -> None:
        """Run the script on the host (the caller's thread: the login's). A failure is no answer: the run's own
        batch then runs, and meets the error the way it always has."""
        result: CommandResult | None = None
        try:
            result = transport.run(self.script, timeout=120)
        except Exception:  # a lost connection, a timeout: the run's own batch will say so
            result = None
        finally:  # whatever happened, the run's first batch on the host is not left waiting
            self._result.set_result(result)

    def result(self, timeout: float | None = None) -> CommandResult | None:
        return self._result.result(timeout)


class FactsAhead:
    """The scripts of each host's first fact batch, kept from the last run (`path`, None: for this process only),
    and the ones sent ahead in this run."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.kept: dict[str, str] = _load(path)  # host -> the script's template (NONCE_SLOT for its nonce)
        self.seen: dict[str, str] = {}  # host -> the template of this run's first batch there
        self.used: set[str] = set()  # hosts whose first batch was answered by what was sent ahead
        self._sent: dict[str, Sent] = {}
        self._lock = threading.Lock()

    def prepare(self, host: str) -> Sent | None:
        """The host's kept script with a new nonce, registered so that `take` finds it; None when nothing is kept.
        Called before the host's connection is handed to the run, so the run's first batch never misses it."""
        template = self.kept.get(host)
        if template is None or NONCE_SLOT not in template:
            return None
        nonce = secrets.token_hex(6)
        sent = Sent(template.replace(NONCE_SLOT, nonce), nonce)
        with self._lock:
            self._sent[host] = sent
        return sent

    def take(self, host: str) -> Sent | None:
        """What was sent ahead to `host`, once (its first batch of the run asks)."""
        with self._lock:
            return self._sent.pop(host, None)

    def remember(self, host: str, script: str, nonce: str) -> None:
        """The script of the host's first batch of this run, for the next run (unless it is too large to travel as
        a command-line argument: it would go by SFTP, which the login's thread does not open)."""
        if len(script.encode()) <= MAX_ARG_SCRIPT and nonce:
            with self._lock:
                self.seen.setdefault(host, script.replace(nonce, NONCE_SLOT))

    def save(self) -> None:
        """Keep this run's first scripts for the next run, when they differ from what was kept (atomically)."""
        with self._lock:
            merged = {**self.kept, **self.seen}
        if self.path is None or merged == self.kept:
            return
        with contextlib.suppress(OSError, ValueError):  # a read-only or full disk: the next run sends nothing ahead
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".facts-ahead-")  # 0600
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump({"format": FORMAT, "hosts": merged}, out)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self.kept = merged
            _prune(self.path.parent)


def _prune(folder: Path) -> None:
    """Keep the MAX_FILES most recently written files (inventories in temporary folders, e.g. the benches', would
    otherwise leave one each)."""
    with contextlib.suppress(OSError):
        files = sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime_ns, reverse=True)
        for old in files[MAX_FILES:]:
            old.unlink(missing_ok=True)


def _load(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable, truncated
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("hosts"), dict):
        return {}
    return {h: s for h, s in data["hosts"].items() if isinstance(h, str) and isinstance(s, str)}
