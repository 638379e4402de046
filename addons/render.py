"""The addons' manifests: Jinja2 templates beside this module (pinned to one upstream release each), rendered with
typed arguments into the objects a ConfigGroup applies. Pure functions: the same arguments render the same objects,
so the server-side dry-run test and `pulumi up` see exactly the same manifests."""

from __future__ import annotations

from typing import Any

import yaml

from roles.templating import render

# libyaml's parser with PyYAML's safe constructors and resolvers (the same objects as yaml.safe_load_all): the
# program renders every addon before its first resource (the air-gapped check) and again for its ConfigGroups, and
# the pure-Python parser took ~15 ms per addon each time
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def manifest(template: str, **values: Any) -> list[dict[str, Any]]:
    """The objects of `templates/<template>`, in file order (empty documents dropped)."""
    text = render(__file__, template, **values)
    return [doc for doc in yaml.load_all(text, Loader=LOADER) if doc]


def as_yaml(objects: list[dict[str, Any]]) -> str:
    """The objects as one multi-document YAML stream (what `kubectl apply -f -` reads)."""
    return yaml.safe_dump_all(objects, sort_keys=False)
