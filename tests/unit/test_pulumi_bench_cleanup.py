"""`keelson bench pulumi` cleans up after itself, and a failed measurement's error is the one it raises, even when
destroying the half-made stack fails too (provision/bench/pulumi_bench.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from provision.bench import BenchError, pulumi_bench
from provision.stack.local import PulumiFailed


class FakeStack:
    destroyed: ClassVar[list[str]] = []
    destroy_fails = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def init(self, config: dict[str, str]) -> None:
        pass

    def destroy(self) -> None:
        FakeStack.destroyed.append("destroy")
        if FakeStack.destroy_fails:
            raise PulumiFailed("`pulumi destroy` exited 1:\nw1: removal from the cluster failed")


class FakeLab:
    downs: ClassVar[list[str]] = []

    @staticmethod
    def names() -> list[str]:
        return ["bench-pulumi"]

    @staticmethod
    def load(name: str) -> FakeLab:
        return FakeLab()

    def down(self) -> None:
        FakeLab.downs.append("down")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    FakeStack.destroyed, FakeLab.downs, FakeStack.destroy_fails = [], [], False
    monkeypatch.setattr(pulumi_bench, "require_artifacts", lambda: None)
    monkeypatch.setattr(pulumi_bench, "build", lambda *args: None)
    monkeypatch.setattr(pulumi_bench, "LocalStack", FakeStack)
    monkeypatch.setattr(pulumi_bench, "Lab", FakeLab)
    monkeypatch.setattr(pulumi_bench, "lab_inventory", lambda out: out)


def _fails(*args: Any) -> dict[str, Any]:
    raise BenchError("the fresh `pulumi up` failed: m1: no space left on device")


def test_the_measurements_error_is_raised_when_the_destroy_fails_too(
    bench: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeStack.destroy_fails = True
    monkeypatch.setattr(pulumi_bench, "_measure", _fails)
    with pytest.raises(BenchError, match="no space left on device"):
        pulumi_bench.bench_pulumi()
    assert "cleaning up after the failure: `pulumi destroy` exited 1:" in capsys.readouterr().err
    assert FakeStack.destroyed == ["destroy"] and FakeLab.downs == ["down", "down"]  # the old lab, then this one


def test_a_destroy_that_fails_after_a_good_measurement_is_the_error(
    bench: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeStack.destroy_fails = True
    monkeypatch.setattr(pulumi_bench, "_measure", lambda *args: {"up_noop_s": 1.0})
    with pytest.raises(PulumiFailed):
        pulumi_bench.bench_pulumi()
    assert FakeLab.downs == ["down", "down"]


def test_a_good_run_returns_its_figures_and_cleans_up(bench: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pulumi_bench, "_measure", lambda *args: {"up_noop_s": 1.0})
    assert pulumi_bench.bench_pulumi() == {"up_noop_s": 1.0}
    assert FakeStack.destroyed == ["destroy"] and FakeLab.downs == ["down", "down"]
