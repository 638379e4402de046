"""Waiting on a condition with a deadline (tenacity), never a bare sleep as synchronisation."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], bool], *, timeout_s: float, every_s: float = 0.5) -> float | None:
    """Ask `condition` every `every_s` until it is true (returns the seconds waited) or `timeout_s` has passed
    (returns None). An exception it raises is not caught."""
    from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

    started = time.monotonic()
    retrying = Retrying(
        stop=stop_after_delay(timeout_s), wait=wait_fixed(every_s), retry=retry_if_result(lambda ok: not ok)
    )
    try:
        retrying(condition)
    except RetryError:
        return None
    return time.monotonic() - started
