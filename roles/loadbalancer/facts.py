"""Facts the load-balancer role reads: where the VIP belongs on a host."""

from __future__ import annotations

from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput


def interface_fact(ctx: HostContext) -> CommandOutput:
    """Three views of where the VIP belongs on this host (read-only): the NIC with the host's node IP, the NIC
    holding the VIP right now, and the route to the VIP."""
    vip = ctx.cluster.control_plane.vip.ip
    own = ctx.nodes.ip(ctx.host)
    return CommandOutput(
        "vip-interface",
        f"ip -o addr show to {own}; echo @@; ip -o addr show to {vip}; echo @@; ip -o route get {vip}",
    )


def parse_interface(out: str) -> str | None:
    """The NIC for keepalived, from `interface_fact`'s output. Never `lo`: on the host holding the VIP the kernel
    routes the VIP through `lo` (a local address), so the route alone would move the VIP off its NIC."""
    own, held, route = [*out.split("@@\n"), "", ""][:3]
    for section in (own, held):  # `2: eth0    inet 10.0.0.11/24 brd … scope global eth0 …`
        for line in section.splitlines():
            words = line.split()
            if len(words) > 1 and words[0].endswith(":") and words[1] != "lo":
                return words[1].split("@")[0]
    words = route.split()  # `10.0.0.10 dev eth0 src 10.0.0.11 uid 0` (`local … dev lo …` on the holder)
    device = words[words.index("dev") + 1] if "dev" in words[:-1] else None
    return device if device != "lo" else None
