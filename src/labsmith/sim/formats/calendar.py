"""Calendar events (pve-common ``src/PVE/CalendarEvent.pm`` -> Rust proxmox-time)."""

import re

from labsmith.sim.formats.base import die, words
from labsmith.sim.formats.registry import register_code_formats

#
# The parser itself is Rust (Proxmox::RS::CalendarEvent); this follows the grammar that
# pve-docs calendar-events.adoc documents: [WEEKDAY] [[YEARS-]MONTHS-DAYS]
# [HOURS:MINUTES[:SECONDS]], lists, ``..`` ranges, ``/`` repetitions, ``*``, and the special
# words. The Rust error texts are not reproduced.

_WEEKDAY_NAMES = {
    name: index
    for index, names in enumerate(
        [
            ("mon", "monday"),
            ("tue", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        ]
    )
    for name in names
}
_SPECIAL_EVENTS = words(
    """
    minutely hourly daily weekly monthly yearly annually quarterly semiannually
    semi-annually
    """
)
_CALENDAR_ITEM = re.compile(r"(\*|\d+(?:\.\.\d+)?)(?:/(\d+))?")


def _verify_calendar_event(text: str) -> str:
    event = text.strip()
    if not event:
        message = "unable to parse calendar event - event is empty\n"
        raise die(f"invalid calendar event '{text}' - {message}")
    if not _is_calendar_event(event):
        raise die(f"invalid calendar event '{text}' - unable to parse calendar event")
    return text


def _is_calendar_event(event: str) -> bool:
    tokens = event.split()
    if len(tokens) == 1 and tokens[0].lower() in _SPECIAL_EVENTS:
        return True
    parsers = (_is_weekdays, _is_calendar_date, _is_calendar_time)
    position = 0
    for parser in parsers:
        if position < len(tokens) and parser(tokens[position]):
            position += 1
    return position == len(tokens)


def _is_weekdays(token: str) -> bool:
    for item in token.lower().split(","):
        days = item.split("..")
        if len(days) > 2 or any(day not in _WEEKDAY_NAMES for day in days):
            return False
    return True


def _is_calendar_values(text: str, lowest: int, highest: int) -> bool:
    for item in text.split(","):
        match = _CALENDAR_ITEM.fullmatch(item)
        if match is None or (match.group(2) is not None and int(match.group(2)) == 0):
            return False
        if match.group(1) != "*":
            bounds = [int(number) for number in match.group(1).split("..")]
            if not all(lowest <= number <= highest for number in bounds) or bounds != sorted(
                bounds
            ):
                return False
    return True


def _is_calendar_date(token: str) -> bool:
    parts = token.split("-")
    limits = [(0, 9999), (1, 12), (1, 31)][-len(parts) :] if len(parts) in (2, 3) else []
    return bool(limits) and all(
        _is_calendar_values(part, *bounds) for part, bounds in zip(parts, limits, strict=True)
    )


def _is_calendar_time(token: str) -> bool:
    parts = token.split(":")
    limits = {1: [(0, 59)], 2: [(0, 23), (0, 59)], 3: [(0, 23), (0, 59), (0, 59)]}.get(len(parts))
    return limits is not None and all(
        _is_calendar_values(part, *bounds) for part, bounds in zip(parts, limits, strict=True)
    )


register_code_formats(
    {
        # pve-common src/PVE/CalendarEvent.pm
        "pve-calendar-event": _verify_calendar_event,
    }
)
