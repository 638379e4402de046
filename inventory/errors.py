"""The small exception hierarchy every keelson package raises from.

Each error says what went wrong, where (host, file:line:field) and, where we know it, how to fix it.
The CLI turns a `KeelsonError` into a message and an exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class KeelsonError(Exception):
    """Base of every error a user can cause. `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


@dataclass(frozen=True)
class InventoryProblem:
    """One located problem in an inventory file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class InventoryError(KeelsonError):
    """The inventory is not valid. Carries every problem found, each with file, line and field."""

    exit_code = 2

    def __init__(self, problems: list[InventoryProblem]) -> None:
        self.problems = problems
        text = "\n".join(str(p) for p in problems)
        super().__init__(f"invalid inventory ({len(problems)} problem{'s' if len(problems) != 1 else ''}):\n{text}")
