"""The code that `dataclasses` generates, compiled once and kept between runs (~/.cache/keelson).

A `@dataclass` writes the source of its `__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`… and compiles
it with `exec` when its class statement runs. A `keelson apply` imports ~175 dataclasses (the roles, the engine,
typer), whose ~870 generated functions took 80–100 ms of CPU to compile on every command; their code objects load
from this cache in ~4 ms. A code object is found by the exact source text dataclasses generated and compiled as
dataclasses compiles it (no `__future__` flags), so a hit runs exactly the code a compile would have produced; the
file is per Python build (a code object is only valid for the interpreter that made it). Best effort, as the
template cache is: a cache that cannot be read or written is left alone and the source compiled.

Installed by the CLI's entry point (`keelson.cli.main`), the Pulumi program's (`provision/__main__.py`, the local
stacks' `__main__.py`) and the dynamic provider process at its first call (`provision/cluster/provider.py` warm_up):
`dataclasses` finds `exec` among its module globals before the builtin, and the cache's `exec` is put there.

String annotations are the same kind of work: `typing.ForwardRef` compiles each one it is made from (mode "eval"),
and a `keelson plan` makes ~930 of them (most for pydantic_core's schema TypedDicts, the rest typer's and pydantic's
own lookups): 7-10 ms of CPU per command (`keelson plan` up to connecting, 9 runs each at load 0.5: least 235.2 -> 225.6
ms, median 237.8 -> 230.7). The cache keeps their code too (keys `EVAL` + the source), put as `typing`'s `compile`;
any other compile passes through.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import marshal
import os
import sys
import tempfile
import typing
from pathlib import Path
from types import CodeType
from typing import Any

from roles.engine.cachedir import user_cache_dir

MAX_ENTRIES = 4096  # past this, a save keeps only what the run used (a cache that only grows is not kept)
EVAL = "\0eval\0"  # the key prefix of a string annotation's code (no dataclass source starts with NUL)


class DataclassCode:
    """Code objects by the source text dataclasses generated, and string annotations' (`EVAL` + the text); `path`
    None keeps them for this process only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.codes = _load(path)
        self.compiled = 0  # sources compiled by this process (not found in the cache)
        self._used: set[str] = set()

    def exec(self, source: Any, globals: dict[str, Any] | None = None, locals: Any = None) -> None:
        """`exec` as `dataclasses._create_fn` calls it, with the source's compiled code from the cache."""
        if isinstance(source, str):
            code = self.codes.get(source)
            if code is None:
                code = compile(source, "<string>", "exec", dont_inherit=True)
                self.codes[source] = code
                self.compiled += 1
            self._used.add(source)
            source = code
        if globals is None:  # the builtin would take its caller's globals: dataclasses' own
            globals = vars(dataclasses)
        builtins.exec(source, globals, locals)  # noqa: S102 - dataclasses' own generated code

    def compile(
        self,
        source: Any,
        filename: Any,
        mode: str,
        flags: int = 0,
        dont_inherit: bool = False,
        optimize: int = -1,
        **kw: Any,
    ) -> Any:
        """`compile` as `typing.ForwardRef` calls it (a string annotation, "eval", no flags), its code from the cache;
        every other call goes to the builtin unchanged. `typing` has no `__future__` imports, so its compile inherits
        no flags: the cache compiles with none either (dont_inherit)."""
        if mode != "eval" or filename != "<string>" or flags or optimize != -1 or kw or not isinstance(source, str):
            return builtins.compile(source, filename, mode, flags, dont_inherit, optimize, **kw)
        key = EVAL + source
        code = self.codes.get(key)
        if code is None:
            code = builtins.compile(source, filename, mode, dont_inherit=True)
            self.codes[key] = code
            self.compiled += 1
        self._used.add(key)
        return code

    def save(self) -> None:
        """Write the cache when this process compiled something (atomically: a reader sees the old or the new)."""
        if self.path is None or not self.compiled:
            return
        codes = self.codes if len(self.codes) <= MAX_ENTRIES else {s: self.codes[s] for s in self._used}
        with contextlib.suppress(OSError, ValueError):  # a read-only or full disk: the next run compiles again
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".dataclasses-")
            try:
                with os.fdopen(fd, "wb") as out:
                    marshal.dump(codes, out)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


def _load(path: Path | None) -> dict[str, CodeType]:
    if path is None:
        return {}
    try:
        data = marshal.loads(path.read_bytes())  # noqa: S302 - our own file in the user's cache, as a .pyc is
    except (OSError, ValueError, EOFError, TypeError):  # missing, unreadable, truncated or foreign
        return {}
    if not isinstance(data, dict):
        return {}
    return {s: c for s, c in data.items() if isinstance(s, str) and isinstance(c, CodeType)}


def default_path() -> Path | None:
    """~/.cache/keelson/dataclasses-<this Python build>.marshal (XDG_CACHE_HOME honoured); None without a home."""
    base = user_cache_dir()
    if base is None:
        return None
    build = f"{sys.implementation.cache_tag}-{sys.hexversion:x}"
    return base / f"dataclasses-{build}.marshal"


def install(path: Path | None = None) -> DataclassCode:
    """Every dataclass defined from now on in this process compiles through the cache; saved at exit. Installed
    already (main() called again in one process): that cache."""
    current = getattr(getattr(dataclasses, "exec", None), "__self__", None)
    if isinstance(current, DataclassCode) and path is None:
        return current
    cache = DataclassCode(path if path is not None else default_path())
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]
    typing.compile = cache.compile  # type: ignore[attr-defined]  # ForwardRef finds it before the builtin
    atexit.register(cache.save)
    return cache


def uninstall(cache: DataclassCode) -> None:
    """Back to the builtin `exec` (the cache is not saved)."""
    if getattr(dataclasses, "exec", None) == cache.exec:
        del dataclasses.exec  # type: ignore[attr-defined]
    if getattr(typing, "compile", None) == cache.compile:
        del typing.compile  # type: ignore[attr-defined]
    atexit.unregister(cache.save)
