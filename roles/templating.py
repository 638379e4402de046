"""Jinja2 for every role: templates live beside the role, undefined variables are errors."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2


@cache
def _environment(folder: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates do not change while keelson runs: no stat of the file per render
        autoescape=False,  # noqa: S701 - config files, not HTML
    )


@cache
def _templates(role_file: str) -> jinja2.Environment:
    """The environment of a role's templates folder (the path resolved once: it was a realpath per render)."""
    return _environment(str(Path(role_file).resolve().parent / "templates"))


def render(role_file: str, template: str, **values: Any) -> str:
    """Render `templates/<template>` of the role whose module is `role_file` (pass `__file__`)."""
    return _templates(role_file).get_template(template).render(**values)
