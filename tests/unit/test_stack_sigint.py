"""`pulumi` children of a keelson that ignores SIGINT get SIGINT back (the CLI stops its plugins with it)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest

from provision.stack.local import interruptible


def _ignored_in_child(preexec: Callable[[], None] | None) -> bool:
    status = subprocess.run(
        ["cat", "/proc/self/status"],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=preexec,
    ).stdout
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def test_nothing_is_done_when_sigint_is_not_ignored() -> None:
    assert interruptible() is None


def test_an_ignored_sigint_is_not_passed_on(sigint_ignored: None) -> None:
    assert _ignored_in_child(None)  # what a child inherits without it
    assert not _ignored_in_child(interruptible())
