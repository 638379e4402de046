"""`keelson bench apply --cluster`'s pure parts: per-phase seconds and changed steps from `apply --json`'s events,
and the longest gap between answers around a fault (no timing is asserted: the inputs are made-up moments)."""

from __future__ import annotations

import json

import pytest

from provision.bench import BenchError
from provision.bench.cluster_bench import changed_steps, longest_gap, phase_seconds, run_finished


def lines(*events: dict[str, object]) -> str:
    return "\n".join(["not json", *(json.dumps(e) for e in events), "{broken"])


def test_phase_seconds_from_the_events() -> None:
    out = lines(
        {"event": "phase_started", "phase": "Connect", "hosts": ["m1"]},
        {"event": "phase_finished", "phase": "Connect", "ok": 1, "changed": 0, "failed": 0, "seconds": 1.234},
        {"event": "phase_finished", "phase": "Backups", "ok": 1, "changed": 0, "failed": 0, "skipped": True},
        {"event": "phase_finished", "phase": "etcd | Binaries", "ok": 1, "changed": 1, "failed": 0, "seconds": 7.0},
    )
    assert phase_seconds(out) == {"Connect": 1.23, "etcd | Binaries": 7.0}


def test_changed_steps_and_the_run_finished_event() -> None:
    finished = {
        "event": "run_finished",
        "ok": True,
        "hosts": {"m1": {"ok": 9, "changed": 0, "failed": 0}, "w1": {"ok": 8, "changed": 2, "failed": 0}},
    }
    assert run_finished(lines(finished)) == finished
    assert changed_steps(finished) == {"w1": 2}
    assert changed_steps({"hosts": {"m1": {"ok": 3, "changed": 0}}}) == {}
    with pytest.raises(BenchError, match="no run_finished"):
        run_finished(lines({"event": "phase_finished", "phase": "Connect"}))


def test_longest_gap_spans_the_fault() -> None:
    answers = [0.0, 0.05, 0.1, 1.6, 1.65, 1.7, 5.0]
    assert longest_gap(answers, since=0.12, until=1.7) == pytest.approx(1.5)  # 0.1 -> 1.6
    assert longest_gap(answers, since=0.12, until=5.0) == pytest.approx(3.3)  # 1.7 -> 5.0, later in the window
    assert longest_gap([0.0, 0.05], since=0.06, until=2.0) == pytest.approx(1.95)  # no answer since: all gap
    assert longest_gap([], since=1.0, until=1.5) == pytest.approx(0.5)
