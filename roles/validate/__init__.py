"""Role `validate`: validate twice — the inventory with no network (the loader), then the live hosts, here, before
any change. Phase "Validate hosts" on every Linux host: Debian or Ubuntu, systemd as PID 1, x86_64 or aarch64.
A failed check stops the run before anything is changed on any host.
"""

from __future__ import annotations

from roles.validate.phases import phases

__all__ = ["phases"]
