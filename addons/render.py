"""The addons' manifests: Jinja2 templates beside this module (pinned to one upstream release each), rendered with
typed arguments into the objects a ConfigGroup applies. Pure functions: the same arguments render the same objects,
so the server-side dry-run test and `pulumi up` see exactly the same manifests."""

from __future__ import annotations

from typing import Any

import yaml

from roles.templating import render


def manifest(template: str, **values: Any) -> list[dict[str, Any]]:
    """The objects of `templates/<template>`, in file order (empty documents dropped)."""
    text = render(__file__, template, **values)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def as_yaml(objects: list[dict[str, Any]]) -> str:
    """The objects as one multi-document YAML stream (what `kubectl apply -f -` reads)."""
    return yaml.safe_dump_all(objects, sort_keys=False)
