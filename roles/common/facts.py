"""Facts the `common` role reads: whether the host is a container, its swap, its hostname."""

from __future__ import annotations

import shlex

from roles.engine.facts import CommandOutput, FactValues

q = shlex.quote
# systemd (PID 1) writes the container manager's name here when it runs in one (systemd-detect-virt reads it too)
VIRT = CommandOutput("container", 'read -r v < /run/systemd/container && echo "$v"')
# an active swap line in /etc/fstab, as both the fact and the fix see it
FSTAB_SWAP = r"^[^#].*[[:space:]]swap([[:space:]]|$)"
SWAP = CommandOutput(
    "swap",
    # active swap areas (the lines of /proc/swaps after its header, counted with builtins), then fstab swap lines
    "n=0; { read -r _; while read -r _; do n=$((n+1)); done; } < /proc/swaps; echo $n; "
    f"grep -cE {q(FSTAB_SWAP)} /etc/fstab",
)
HOSTNAME = CommandOutput("hostname", 'read -r h < /proc/sys/kernel/hostname && echo "$h"')


def in_container(facts: FactValues) -> bool:
    out, rc = facts.get(VIRT)
    return rc == 0 and out.strip() not in ("", "none")


def swap_counts(facts: FactValues) -> tuple[int, int]:
    """(active swap areas, swap lines in /etc/fstab); missing numbers count as 0."""
    out, _ = facts.get(SWAP)
    numbers = [int(n) for n in out.split() if n.isdigit()]
    padded = [*numbers, 0, 0]
    return padded[0], padded[1]
