"""The program's log messages go to the engine from a thread of their own (provision/stack/engine_log.py): the
caller never waits for the engine, the messages arrive in order, and an exiting program sends what is left."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from pulumi import log

from provision.stack.engine_log import LogSender, send_from_thread

ROOT = Path(__file__).resolve().parents[2]


class SlowEngine:
    """Answers each Log call only once released (at most 5 s): a caller that waits for it is seen waiting."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.caller_went_on = False
        self.got: list[tuple[str, int, bool, str]] = []

    def Log(self, request: Any) -> None:  # the engine's RPC name
        self.release.wait(5)
        self.got.append((request.message, request.severity, self.caller_went_on, threading.current_thread().name))


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> SlowEngine:
    fake = SlowEngine()
    monkeypatch.setattr(log, "_log", log._log)  # whatever the test installs is taken away afterwards
    monkeypatch.setattr(log, "get_engine", lambda: fake)
    return fake


def test_the_caller_goes_on_and_the_messages_arrive_in_order(engine: SlowEngine) -> None:
    from pulumi.runtime.proto import engine_pb2

    sender = send_from_thread()
    assert send_from_thread() is sender  # a second call changes nothing
    log.debug("registering resource")
    log.info("a message")
    log.debug("resource registration successful")
    engine.caller_went_on = True  # reached while the engine still holds the first message
    engine.release.set()
    sender.flush()
    assert engine.got == [
        ("registering resource", engine_pb2.DEBUG, True, "keelson-engine-log"),
        ("a message", engine_pb2.INFO, True, "keelson-engine-log"),
        ("resource registration successful", engine_pb2.DEBUG, True, "keelson-engine-log"),
    ]


def test_a_message_about_a_resource_takes_the_sdks_own_path() -> None:
    seen: list[tuple[Any, ...]] = []
    sender = LogSender(lambda *args: seen.append(args))
    resource = object()
    sender("engine", 1, "about it", resource, 7, None)
    assert seen == [("engine", 1, "about it", resource, 7, None)]


def test_an_engine_that_fails_stops_the_sending_not_the_program() -> None:
    calls: list[str] = []

    class Gone:
        def Log(self, request: Any) -> None:
            calls.append(request.message)
            raise ConnectionError("engine gone")

    sender = LogSender(lambda *args: None)
    for message in ("one", "two", "three"):
        sender(Gone(), 1, message, None, None, None)  # never raises here
    sender.flush()
    assert calls == ["one"]
    assert isinstance(sender.failed, ConnectionError)


def test_an_exiting_program_sends_what_is_left() -> None:
    """The thread is a daemon: without the flush at exit, the messages still queued would be lost."""
    code = """if True:
        import time
        from pulumi import log
        from provision.stack.engine_log import send_from_thread

        class Engine:
            def Log(self, request):
                time.sleep(0.002)
                print(request.message, flush=True)

        engine = Engine()
        log.get_engine = lambda: engine
        send_from_thread()
        for i in range(40):
            log.debug(f"m{i}")
        print("END", flush=True)
    """
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    lines = run.stdout.split()
    assert [line for line in lines if line != "END"] == [f"m{i}" for i in range(40)]
    assert lines.index("END") < lines.index("m39")  # the last ones were sent after the program's end
