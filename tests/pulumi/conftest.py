"""Pulumi mocks for the component tests (no engine: `pulumi.runtime.set_mocks`). The real engine runs in
test_engine_lab.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pulumi
import pytest

Outputs = Callable[[pulumi.runtime.MockResourceArgs], dict[str, Any]]
F = TypeVar("F", bound=Callable[..., Any])


def pulumi_test(fn: F) -> F:
    """`pulumi.runtime.test` (waits for every Output the test made), typed."""
    return cast(F, pulumi.runtime.test(fn))  # type: ignore[no-untyped-call]


def is_secret(output: pulumi.Output[Any]) -> pulumi.Output[bool]:
    flag: pulumi.Output[bool] = pulumi.Output.from_input(pulumi.Output.is_secret(output))
    return flag


@dataclass
class Recorder(pulumi.runtime.Mocks):
    """Records every resource registered; outputs = inputs plus what `extra` adds for a type."""

    extra: dict[str, Outputs] = field(default_factory=dict)
    resources: list[pulumi.runtime.MockResourceArgs] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        self.resources.append(args)
        outs = dict(args.inputs)
        make = self.extra.get(args.typ)
        if make is not None:
            outs.update(make(args))
        if args.typ.startswith("hcloud:"):  # Hetzner ids are numbers (the program converts them with int())
            return str(1000 + len(self.resources)), outs
        return f"{args.name}-id", outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def names(self, typ: str) -> list[str]:
        return [r.name for r in self.of_type(typ)]


@pytest.fixture
def mocks() -> Recorder:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="keelson", stack="test", preview=False)
    return recorder
