"""The lab: full Debian hosts as systemd-nspawn containers on a private bridge (see shared/LAB.md)."""

from provision.lab.errors import LabError
from provision.lab.lab import Lab
from provision.lab.topology import LabHost, LabSpec

__all__ = ["Lab", "LabError", "LabHost", "LabSpec"]
