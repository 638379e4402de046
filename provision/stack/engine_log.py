"""The program's log messages to the engine, sent from a thread of their own.

The Python SDK sends every log message with a blocking call to the engine (pulumi/log.py `_log`), and it logs
several debug messages for each resource it registers ("registering resource", "resource registration prepared",
"… successful", "beginning rpc …"): ~155 round trips in a no-op `pulumi up` of the lab stack, each holding the
program's one event loop — which sends the registrations and reads the engine's answers — for the round trip
(1-5 ms on this machine at load 4-13: 0.69 s of a profiled no-op's 5.5 s). Here the messages go in a queue, in the
order they were logged, and one daemon thread sends them with the same blocking call; the loop goes on at once.
At exit the thread sends what is left before the process ends (at most `FLUSH_S`), so a message logged just before
an error exit still reaches the engine, as the SDK's comment asks.

Only messages with no resource: those with one are the SDK's own asynchronous path (it waits for the URN first).
Nothing else of the SDK changes; `pulumi up --debug` shows the same messages.
"""

from __future__ import annotations

import atexit
import queue
import threading
from typing import Any

FLUSH_S = 10.0  # how long an exiting program waits for its last messages to be sent


class LogSender:
    """One queue and one thread, started with the first message."""

    def __init__(self, send_original: Any) -> None:
        self._original = send_original  # pulumi.log._log, for messages attached to a resource
        self._queue: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failed: BaseException | None = None  # the first failed send: nothing more is sent after it

    def __call__(self, engine: Any, severity: Any, message: str, resource: Any, stream_id: Any, ephemeral: Any) -> None:
        if resource is not None:
            self._original(engine, severity, message, resource, stream_id, ephemeral)
            return
        from pulumi.runtime.proto import engine_pb2

        request = engine_pb2.LogRequest(
            severity=severity, message=message, urn="", streamId=stream_id or 0, ephemeral=ephemeral
        )
        self._start()
        self._queue.put((engine, request))

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._send_all, name="keelson-engine-log", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def _send_all(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.failed is None:
                engine, request = item
                try:
                    engine.Log(request)
                except Exception as exc:  # the engine gone: the program fails on its own calls anyway
                    self.failed = exc

    def flush(self, timeout: float = FLUSH_S) -> None:
        """Send what is queued, then stop the thread (at exit; the engine waits for the program to end)."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)


def send_from_thread() -> LogSender:
    """Make the SDK's log calls queue their messages for the sending thread (the program's process; again: the
    same sender)."""
    from pulumi import log

    if isinstance(log._log, LogSender):
        return log._log
    sender = LogSender(log._log)
    setattr(log, "_log", sender)  # noqa: B010 (the SDK's module function, looked up at each call)
    return sender
