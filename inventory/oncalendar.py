"""systemd calendar events (`OnCalendar=`, systemd.time(7)), checked in Python at inventory load.

A schedule systemd cannot parse would make `keelson-etcd-backup.timer` fail to load on every member — a backup that
silently never runs. `calendar_problem(text)` returns why `text` is not a calendar event (None when it is), following
systemd's own parser (`src/shared/calendarspec.c`) and cross-checked against `systemd-analyze calendar` in the unit
tests:

    shorthand    minutely hourly daily weekly monthly quarterly yearly annually semiannually … (any case)
    full form    [WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE]
    weekdays     Mon, Monday, … (any case), lists `Mon,Wed`, ranges `Mon..Fri` (or `Mon-Fri`)
    a component  `*`, or values `5`, lists `1,15`, ranges `8..18`, repetitions `0/15`, `8..18/2`;
                 `~` before the day counts from the month's end (`*-02~03`); seconds may have a fraction
    timezone     ` UTC`, or an IANA zone name (`Europe/Berlin`) known to this machine's zoneinfo
    epoch        `@1700000000`

Each component must make sense (month 1–12, day 1–31, hour 0–23, minute 0–59, second < 60, year 1970–2199;
two-digit years are 19xx/20xx as in systemd; a repetition must fit in its range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SHORTHANDS = frozenset(
    {
        "minutely",
        "hourly",
        "daily",
        "monthly",
        "weekly",
        "yearly",
        "annually",
        "anually",
        "quarterly",
        "semiannually",
        "semi-annually",
        "biannually",
        "bi-annually",
    }
)
WEEKDAYS = (  # longest first, as systemd matches prefixes in this order
    ("monday", 0),
    ("mon", 0),
    ("tuesday", 1),
    ("tue", 1),
    ("wednesday", 2),
    ("wed", 2),
    ("thursday", 3),
    ("thu", 3),
    ("friday", 4),
    ("fri", 4),
    ("saturday", 5),
    ("sat", 5),
    ("sunday", 6),
    ("sun", 6),
)
USEC = 1_000_000
INT_MAX = 2**31 - 1
MIN_YEAR, MAX_YEAR = 1970, 2199


class CalendarError(ValueError):
    """Not a calendar event; the message says which part."""


@dataclass
class Component:
    start: int
    stop: int = -1  # -1: no range
    repeat: int = 0


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.s[j] if j < len(self.s) else ""

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.i += 1

    # -- weekdays ----------------------------------------------------------------------------------------------
    def weekdays(self) -> None:
        first, range_from = True, -1
        while True:
            rest = self.s[self.i :].lower()
            match = next(((name, nr) for name, nr in WEEKDAYS if rest.startswith(name)), None)
            if match is None:
                if first:
                    return  # no weekday part: the date follows
                raise CalendarError(f"expected a weekday at {self.s[self.i :]!r}")
            name, nr = match
            if self.peek(len(name)) not in ("", "-", ".", ",", " "):
                raise CalendarError(f"unknown weekday {self.s[self.i :].split(' ')[0]!r}")
            if range_from >= 0 and range_from > nr:
                raise CalendarError("a weekday range must go forwards (Mon..Fri, not Fri..Mon)")
            self.i += len(name)
            if self.at_end():
                return
            if self.peek() == " ":
                self.skip_spaces()
                return
            if self.peek() == ".":
                if range_from >= 0 or self.peek(1) != ".":
                    raise CalendarError("a weekday range is written Mon..Fri")
                range_from = nr
                self.i += 2
            elif self.peek() == "-":
                if range_from >= 0:
                    raise CalendarError("a weekday range is written Mon..Fri")
                range_from = nr
                self.i += 1
            elif self.peek() == ",":
                range_from = -1
                self.i += 1
            if self.at_end() or self.peek() == " ":
                if range_from >= 0:
                    raise CalendarError("a weekday range needs its last day (Mon..Fri)")
                self.skip_spaces()
                return
            first = False

    # -- components --------------------------------------------------------------------------------------------
    def decimal(self, usec: bool) -> int:
        m = re.match(r"[0-9]+", self.s[self.i :])
        if m is None:
            raise CalendarError(f"expected a number at {self.s[self.i :]!r}")
        self.i += m.end()
        value = int(m.group())
        if usec:
            value *= USEC
            if self.peek() == "." and self.peek(1) != ".":
                self.i += 1
                frac = re.match(r"[0-9]+", self.s[self.i :])
                if frac is None:
                    raise CalendarError("a fraction of a second needs digits after the '.'")
                self.i += frac.end()
                digits = frac.group()
                value += int(digits[:6].ljust(6, "0")) + (1 if len(digits) > 6 and digits[6] >= "5" else 0)
        if value > INT_MAX:
            raise CalendarError(f"{m.group()} is out of range")
        return value

    def chain(self, usec: bool) -> list[Component] | None:
        """A component list; None for `*` (any value)."""
        if self.peek() == "*":
            self.i += 1
            return [Component(0, -1, USEC)] if usec else None
        out = []
        while True:
            start = self.decimal(usec)
            stop, repeat = -1, 0
            if self.peek() == "." and self.peek(1) == ".":
                self.i += 2
                stop = self.decimal(usec)
                repeat = USEC if usec else 1
            if self.peek() == "/":
                self.i += 1
                repeat = self.decimal(usec)
                if repeat == 0:
                    raise CalendarError("a repetition of 0 never advances")
            if self.peek() not in ("", " ", ",", "-", "~", ":"):
                raise CalendarError(f"unexpected {self.peek()!r} in {self.s!r}")
            out.append(Component(start, stop, repeat))
            if self.peek() != ",":
                return out
            self.i += 1


@dataclass
class _Spec:
    year: list[Component] | None = None
    month: list[Component] | None = None
    day: list[Component] | None = None
    hour: list[Component] | None = None
    minute: list[Component] | None = None
    second: list[Component] | None = None
    end_of_month: bool = False


def _date(p: _Parser, spec: _Spec) -> bool:
    """[[YEAR-]MONTH-DAY]; True when an `@epoch` ended the expression."""
    if p.at_end():
        return False
    if p.peek() == "@":
        p.i += 1
        if re.match(r"[0-9]+", p.s[p.i :]) is None:
            raise CalendarError("@ needs seconds since the epoch")
        p.decimal(False)
        return True
    start = p.i
    first = p.chain(False)
    if p.peek() in ("", ":"):
        p.i = start  # it was the hour of a time, not a date
        return False
    if p.peek() == "~":
        spec.end_of_month = True
    elif p.peek() != "-":
        raise CalendarError(f"expected '-' in the date at {p.s[p.i :]!r}")
    p.i += 1
    second = p.chain(False)
    if p.peek() in ("", " "):
        p.skip_spaces()
        spec.month, spec.day = first, second
        return False
    if spec.end_of_month:
        raise CalendarError("'~' goes between the month and the day")
    if p.peek() == "~":
        spec.end_of_month = True
    elif p.peek() != "-":
        raise CalendarError(f"expected '-' in the date at {p.s[p.i :]!r}")
    p.i += 1
    third = p.chain(False)
    if p.peek() not in ("", " "):
        raise CalendarError(f"unexpected {p.s[p.i :]!r} after the date")
    p.skip_spaces()
    spec.year, spec.month, spec.day = first, second, third
    return False


def _time(p: _Parser, spec: _Spec) -> None:
    """[HOUR:MINUTE[:SECOND]]"""
    if p.at_end():
        spec.hour, spec.minute, spec.second = [Component(0)], [Component(0)], [Component(0)]
        return
    spec.hour = p.chain(False)
    if p.peek() != ":":
        raise CalendarError("a time is HOUR:MINUTE[:SECOND]")
    p.i += 1
    spec.minute = p.chain(False)
    if p.at_end():
        spec.second = [Component(0)]
        return
    if p.peek() != ":":
        raise CalendarError(f"unexpected {p.s[p.i :]!r} in the time")
    p.i += 1
    spec.second = p.chain(True)
    if not p.at_end():
        raise CalendarError(f"unexpected {p.s[p.i :]!r} after the time")


def _fix_years(chain: list[Component] | None) -> None:
    for c in chain or []:
        for attr in ("start", "stop"):
            value = getattr(c, attr)
            if 0 <= value < 70:
                setattr(c, attr, value + 2000)
            elif 70 <= value < 100:
                setattr(c, attr, value + 1900)


def _normalize(chain: list[Component] | None) -> None:
    """systemd's normalize_chain: a range ends on its last repetition; one that cannot repeat is a single value."""
    for c in chain or []:
        if c.stop > c.start and c.repeat > 0:
            c.stop -= (c.stop - c.start) % c.repeat
        if (c.stop > c.start and c.start + c.repeat > c.stop) or c.start == c.stop:
            c.stop, c.repeat = -1, 0


def _valid(chain: list[Component] | None, low: int, high: int, what: str, end_of_month: bool = False) -> None:
    if end_of_month:
        high -= 3  # systemd: at most 28 days before the month's end
    for c in chain or []:
        shown = (lambda v: f"{v / USEC:g}") if what == "second" else str
        if not low <= c.start <= high:
            raise CalendarError(f"{what} {shown(c.start)} is outside {shown(low)}..{shown(high)}")
        if c.repeat > high - low:
            raise CalendarError(f"{what}: a repetition of {shown(c.repeat)} is longer than the range")
        if c.stop >= 0:
            if not low <= c.stop <= high:
                raise CalendarError(f"{what} {shown(c.stop)} is outside {shown(low)}..{shown(high)}")
            if c.start + c.repeat > c.stop:
                raise CalendarError(f"{what}: the range {shown(c.start)}..{shown(c.stop)} goes backwards")
        elif end_of_month and c.start - c.repeat < low:
            raise CalendarError(f"{what}: the repetition goes before the month's start")
        elif not end_of_month and c.start + c.repeat > high:
            raise CalendarError(f"{what}: {shown(c.start)}/{shown(c.repeat)} never repeats within {what}s")


def _split_timezone(text: str) -> str:
    """Drop a trailing ` UTC` or IANA zone (systemd resolves it with the host's zoneinfo, as zoneinfo does here)."""
    if text.lower().endswith(" utc"):
        return text[:-4]
    head, space, zone = text.rpartition(" ")
    if space and zone and _is_timezone(zone):
        return head
    return text


def _is_timezone(name: str) -> bool:
    import zoneinfo

    if not re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", name):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def calendar_problem(text: str) -> str | None:
    """Why `text` is not a systemd calendar event, or None when it is one."""
    body = _split_timezone(text)
    if not body:
        return "empty"
    if body.lower() in SHORTHANDS:
        return None
    p, spec = _Parser(body), _Spec()
    try:
        p.weekdays()
        if not _date(p, spec):
            _time(p, spec)
        if not p.at_end():
            raise CalendarError(f"unexpected {p.s[p.i :]!r}")
        if spec.end_of_month and spec.day is None:
            spec.end_of_month = False
        _fix_years(spec.year)
        for chain in (spec.year, spec.month, spec.day, spec.hour, spec.minute, spec.second):
            _normalize(chain)
        _valid(spec.year, MIN_YEAR, MAX_YEAR, "year")
        _valid(spec.month, 1, 12, "month")
        _valid(spec.day, 1, 31, "day", spec.end_of_month)
        _valid(spec.hour, 0, 23, "hour")
        _valid(spec.minute, 0, 59, "minute")
        _valid(spec.second, 0, 60 * USEC - 1, "second")
    except CalendarError as exc:
        return str(exc)
    return None
