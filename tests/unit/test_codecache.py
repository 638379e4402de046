"""The dataclasses code cache (keelson/codecache.py): a class made through it is the class dataclasses makes."""

import dataclasses
import inspect
import typing
from pathlib import Path

import pytest

from keelson import codecache


def make() -> type:
    @dataclasses.dataclass(frozen=True, order=True)
    class Point:
        x: int
        y: "tuple[str, ...]" = dataclasses.field(default_factory=tuple)
        label: str | None = None

    return Point


def made_with(cache_file: Path | None) -> tuple[type, codecache.DataclassCode]:
    cache = codecache.install(cache_file)
    try:
        return make(), cache
    finally:
        codecache.uninstall(cache)


def test_a_class_through_the_cache_behaves_as_one_without(tmp_path: Path) -> None:
    plain = make()
    cached, cache = made_with(tmp_path / "dc.marshal")
    assert cache.compiled > 0
    for cls in (plain, cached):
        p = cls(1, ("a",))
        assert repr(p).endswith("Point(x=1, y=('a',), label=None)")
        assert p == cls(1, ("a",)) and p < cls(2) and hash(cls(1, label="z")) == hash(cls(1, label="z"))
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.x = 2
    assert repr(plain(1)) == repr(cached(1))
    assert str(inspect.signature(plain)) == str(inspect.signature(cached))
    # compiled without this module's or codecache's `from __future__ import annotations`: real types, as without
    annotations = vars(cached)["__init__"].__annotations__
    assert annotations == vars(plain)["__init__"].__annotations__ and annotations["x"] is int


def test_a_second_process_compiles_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dc.marshal"
    _, first = made_with(path)
    first.save()
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    again, second = made_with(path)
    assert second.compiled == 0 and again(3).x == 3
    written = path.stat().st_mtime_ns
    second.save()  # nothing new: not written again
    assert path.stat().st_mtime_ns == written


def test_an_unreadable_or_unwritable_cache_is_left_alone(tmp_path: Path) -> None:
    broken = tmp_path / "dc.marshal"
    broken.write_bytes(b"\x00not marshal")
    cls, cache = made_with(broken)
    assert cache.compiled > 0 and cls(1).x == 1
    blocked = tmp_path / "file"
    blocked.write_text("")
    cls, cache = made_with(blocked / "dc.marshal")  # its folder is a file: cannot be made
    cache.save()
    assert cls(1).x == 1


def test_uninstall_restores_the_builtin(tmp_path: Path) -> None:
    cache = codecache.install(tmp_path / "dc.marshal")
    assert dataclasses.exec == cache.exec  # type: ignore[attr-defined]
    codecache.uninstall(cache)
    assert not hasattr(dataclasses, "exec")


def test_string_annotations_compile_once_and_mean_what_they_say(tmp_path: Path) -> None:
    """typing.ForwardRef compiles each string annotation: through the cache, once per text across processes, to the
    same code; every other compile is the builtin's."""
    path = tmp_path / "dc.marshal"
    text = "dict[str, tuple[int, ...]] | None"

    class Holder:
        value: "dict[str, tuple[int, ...]] | None"

    expected = typing.get_type_hints(Holder)["value"]
    first = codecache.install(path)
    try:
        ref = typing.ForwardRef(text)
        assert first.compiled == 1 and ref.__forward_code__ is first.codes[codecache.EVAL + text]
        assert typing.get_type_hints(Holder)["value"] == expected
        exec_code = first.compile("x = 1", "<string>", "exec")  # not an annotation: the builtin's, not kept
        assert exec_code.co_filename == "<string>" and len(first.codes) == 1 + sum(
            not k.startswith(codecache.EVAL) for k in first.codes
        )
        with pytest.raises(SyntaxError):
            typing.ForwardRef("not an ( expression")
    finally:
        codecache.uninstall(first)
    assert "compile" not in vars(typing)  # the builtin again
    first.save()
    second = codecache.install(path)
    try:
        again = typing.ForwardRef(text)
        assert second.compiled == 0 and again.__forward_code__ == compile(text, "<string>", "eval")
    finally:
        codecache.uninstall(second)
