"""`keelson bench …`: keelson measured on the lab, one module per bench. Product code: it runs from an installed
wheel, so it never imports `tests/`. Field names are fixed in shared/DESIGN.md ("Benchmarks")."""

from __future__ import annotations

from inventory.errors import KeelsonError


class BenchError(KeelsonError):
    """A bench could not measure what it measures (a run failed, a no-op changed something): the figure would lie."""
