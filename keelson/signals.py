"""SIGTERM unwinds like Ctrl-C for the commands that make things they must take away again (labs, a stopped etcd
member, a moved VIP): their `finally` blocks run. Python's default for SIGTERM ends the process at once."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def stop_cleanly_on_sigterm() -> None:
    """From now on SIGTERM (a CI timeout, `kill`) raises SystemExit(128 + 15) in the main thread."""

    def stop(signum: int, frame: FrameType | None) -> None:
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
