"""Engine errors: each names the host and says how to fix it."""

from __future__ import annotations

from inventory.errors import KeelsonError


class EngineError(KeelsonError):
    """Something went wrong on a host."""

    def __init__(self, host: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{host}: {message}", hint=hint)
        self.host = host


class HostKeyUnknown(EngineError):
    pass


class HostKeyMismatch(EngineError):
    pass


class HostUnreachable(EngineError):
    pass


class AuthFailed(EngineError):
    pass


class CommandFailed(EngineError):
    pass


class HostCheckFailed(EngineError):
    """A live check of a host's facts failed (wrong OS, no systemd, …)."""
