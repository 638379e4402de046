"""Jinja2 for every role: templates live beside the role, undefined variables are errors."""

from __future__ import annotations

import contextlib
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket

from roles.engine.cachedir import user_cache_dir

SETTINGS: dict[str, Any] = {
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
    "autoescape": False,  # config files, not HTML
}


class CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Templates compiled once, kept between runs (~/.cache/keelson): a no-op renders ~22 templates, and compiling
    them cost ~40 ms of CPU per command. Jinja2 reuses a template's code only while its source has the same
    checksum, for the same Jinja2 bytecode and Python version; the folder's name holds Jinja2's version and these
    settings (they change the compiled code, not the source). Best effort: a cache that cannot be read or written
    is left alone and the template compiled."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a truncated or foreign file: compile instead (a bucket without code is a miss)
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):  # a read-only or full disk: the next run compiles it again
            super().dump_bytecode(bucket)


@cache
def _bytecode_cache() -> CompiledTemplates | None:
    base = user_cache_dir()
    if base is None:
        return None
    settings = repr(sorted((k, getattr(v, "__name__", v)) for k, v in SETTINGS.items()))
    key = hashlib.sha256(f"{jinja2.__version__} {settings}".encode()).hexdigest()[:16]
    folder = base / f"templates-{key}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return CompiledTemplates(str(folder))


@cache
def _environment(folder: str) -> jinja2.Environment:
    return jinja2.Environment(  # noqa: S701 - autoescape off in SETTINGS: config files, not HTML
        loader=jinja2.FileSystemLoader(folder),
        auto_reload=False,  # templates do not change while keelson runs: no stat of the file per render
        bytecode_cache=_bytecode_cache(),
        **SETTINGS,
    )


@cache
def _templates(role_file: str) -> jinja2.Environment:
    """The environment of a role's templates folder (the path resolved once: it was a realpath per render)."""
    return _environment(str(Path(role_file).resolve().parent / "templates"))


def render(role_file: str, template: str, **values: Any) -> str:
    """Render `templates/<template>` of the role whose module is `role_file` (pass `__file__`)."""
    return _templates(role_file).get_template(template).render(**values)
