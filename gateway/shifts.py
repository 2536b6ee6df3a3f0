"""A site's shifts: its working day cut into spans of whole hours, e.g. "08-16,16-24,00-08" (issue 12 item 7).

A shift "HH-HH" runs from the first hour to the second in the site's time zone; one whose end is not after its
start runs past midnight ("22-06": 22:00 to 06:00 the next morning) and belongs to the day it starts. A site's
shifts cover the 24 hours once each (no gap, no overlap), so every scan falls in exactly one shift. The day's
sheet counts by calendar day; its shifts count by the working day, which differs when a shift crosses midnight.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

DEFAULT = "08-16,16-24,00-08"  # three eight-hour shifts, the example


@dataclass(frozen=True)
class Shift:
    start_h: int  # 0..23
    end_h: int  # 1..24; not after start_h: the shift runs past midnight

    @property
    def name(self) -> str:
        return f"{self.start_h:02d}-{self.end_h:02d}"

    def hours(self) -> list[int]:
        """The hours of the day (0..23) it covers."""
        span = (self.end_h - self.start_h) % 24 or 24
        return [(self.start_h + i) % 24 for i in range(span)]

    def bounds(self, day: dt.date, timezone: str) -> tuple[int, int]:
        """[start, end) in Unix ms of this shift on `day` (the day it starts) in the zone; a daylight-saving
        change inside it makes it an hour shorter or longer, as the clock on the wall does."""
        tz = zoneinfo.ZoneInfo(timezone)
        start = dt.datetime.combine(day, dt.time(self.start_h), tz)
        end_day = day + dt.timedelta(days=1) if self.end_h <= self.start_h or self.end_h == 24 else day
        end = dt.datetime.combine(end_day, dt.time(self.end_h % 24), tz)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def parse(text: str) -> tuple[Shift, ...]:
    """ "08-16,16-24,00-08" -> its shifts in the order given; "" -> DEFAULT's.

    Raises ValueError naming what is wrong: a malformed span, an hour outside 0..24, an empty span, or hours of the
    day in no shift or in two."""
    text = text.strip() or DEFAULT
    shifts = []
    for part in text.split(","):
        start, sep, end = part.strip().partition("-")
        if not (sep and start.isdigit() and end.isdigit()):
            raise ValueError(f"shifts {text!r}: {part.strip()!r} is not HH-HH (e.g. 08-16)")
        s = Shift(int(start), int(end))
        if not (0 <= s.start_h <= 23 and 1 <= s.end_h <= 24) or s.start_h == s.end_h:
            raise ValueError(f"shifts {text!r}: {part.strip()!r} needs a start 00-23 and another end 01-24")
        shifts.append(s)
    covered = [h for s in shifts for h in s.hours()]
    twice = sorted({h for h in covered if covered.count(h) > 1})
    missing = sorted(set(range(24)) - set(covered))
    if twice or missing:
        what = f"hours {twice} are in two shifts" if twice else f"hours {missing} are in no shift"
        raise ValueError(f"shifts {text!r}: {what}; the shifts must cover the 24 hours once each")
    return tuple(shifts)
