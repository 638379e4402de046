"""Templates are compiled once and kept between runs (roles/templating.py): the same text from the cache, and a cache
that cannot be used never stops a render."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from roles import templating

ROLE_FILE = str(Path(templating.__file__).parent / "common" / "render.py")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A cache under tmp_path, and new environments (they are kept per process)."""

    def clear() -> None:
        for cached in (templating._bytecode_cache, templating._environment, templating._templates):
            cached.cache_clear()

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    clear()
    yield tmp_path / "cache"
    clear()


def _render_counting(monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    compiled = []
    original = jinja2.Environment.compile

    def compile(self: jinja2.Environment, *args: object, **kwargs: object) -> object:
        compiled.append(args[0])
        return original(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(jinja2.Environment, "compile", compile)
    for cached in (templating._environment, templating._templates):
        cached.cache_clear()  # a new process: nothing compiled in memory
    text = templating.render(ROLE_FILE, "sysctl.conf.j2", sysctl={"net.ipv4.ip_forward": 1})
    return text, len(compiled)


def test_a_template_is_compiled_once_across_runs(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, compiled_first = _render_counting(monkeypatch)
    second, compiled_second = _render_counting(monkeypatch)
    assert (compiled_first, compiled_second) == (1, 0)
    assert first == second and "net.ipv4.ip_forward = 1" in first
    folders = list(fresh.glob("keelson/templates-*"))
    assert len(folders) == 1 and folders[0].stat().st_mode & 0o777 == 0o700


def test_a_broken_cache_file_is_compiled_again(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected, _ = _render_counting(monkeypatch)
    for entry in fresh.glob("keelson/templates-*/*"):
        entry.write_bytes(entry.read_bytes()[:20])  # truncated
    text, compiled = _render_counting(monkeypatch)
    assert (text, compiled) == (expected, 1)


def test_a_cache_that_cannot_be_made_or_written_is_skipped(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh.parent.joinpath("cache").write_text("a file where the cache folder would go")
    text, compiled = _render_counting(monkeypatch)
    assert compiled == 1 and "net.ipv4.ip_forward = 1" in text
    assert templating._bytecode_cache() is None
