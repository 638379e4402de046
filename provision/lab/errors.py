"""Errors of the lab (a user can cause them: not root, missing packages, a host that does not come up)."""

from __future__ import annotations

from inventory.errors import KeelsonError


class LabError(KeelsonError):
    """The lab could not do what was asked; the message says which host and why."""
