"""The day's tallies per shift (issue 12 item 7): `sites set --shifts`, `report --by shift`, day ranges and CSV,
through the real gateway and CLI on SQLite and PostgreSQL. Each site's shifts are cut in its own zone; a shift
past midnight belongs to the day it starts; every scan is in exactly one shift."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zoneinfo

import pytest

from gateway import shifts
from testkit.gateway import run_cli


@pytest.fixture
def db_url(any_db: str) -> str:  # this module's gateway and CLI on both backends
    return any_db


def _ms(zone: str, text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone)).timestamp() * 1000)


BRIDGE = "Asia/Shanghai"  # UTC+8, default shifts 08-16, 16-24, 00-08
TOLL = "Asia/Urumqi"  # UTC+6, shifts 22-06, 06-14, 14-22
SCANS = {
    ("bridge", BRIDGE): ["2026-12-04T07:30", "2026-12-04T08:00", "2026-12-04T15:59:59", "2026-12-04T16:00",
                         "2026-12-04T23:59", "2026-12-05T00:00"],
    ("toll", TOLL): ["2026-12-04T05:59", "2026-12-04T06:00", "2026-12-04T21:59", "2026-12-04T22:00",
                     "2026-12-05T05:59", "2026-12-05T06:00"],
}  # fmt: skip


def _populate(db_url: str, start_gateway, nodes) -> None:
    for site, zone, extra in (("bridge", BRIDGE, []), ("toll", TOLL, ["--shifts", "22-06,06-14,14-22"])):
        done = run_cli("sites", "--db", db_url, "set", site, "--timezone", zone, *extra)
        assert done.returncode == 0, done.stderr
    start_gateway()
    for (site, zone), times in SCANS.items():
        node = nodes(site, "n1")
        for seq, when in enumerate(times):
            node.send_seqs([seq], ts=_ms(zone, when))
        assert node.wait_receipts(range(len(times)))


def _rows(db_url: str, *args: str) -> list[dict[str, str]]:
    done = run_cli("report", "--by", "shift", "--format", "csv", *args, "--db", db_url)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def test_a_day_per_shift_in_each_sites_zone(db_url: str, start_gateway, nodes) -> None:
    _populate(db_url, start_gateway, nodes)
    got = {(r["site"], r["shift"]): int(r["screened"]) for r in _rows(db_url, "--day", "2026-12-04")}
    assert got == {
        ("bridge", "00-08"): 1, ("bridge", "08-16"): 2, ("bridge", "16-24"): 2,
        ("toll", "06-14"): 1, ("toll", "14-22"): 1, ("toll", "22-06"): 2,  # 22:00 and 05:59 the next morning
    }  # fmt: skip
    zones = {r["site"]: r["timezone"] for r in _rows(db_url, "--day", "2026-12-04")}
    assert zones == {"bridge": BRIDGE, "toll": TOLL}


def test_a_range_of_days_gives_every_shift_of_every_day_and_each_scan_once(db_url: str, start_gateway, nodes) -> None:
    _populate(db_url, start_gateway, nodes)
    rows = _rows(db_url, "--day", "2026-12-03..2026-12-05")
    assert {r["day"] for r in rows} == {"2026-12-03", "2026-12-04", "2026-12-05"}
    assert len(rows) == 3 * 2 * 3  # days x sites x shifts, empty shifts included
    per_site = {site: sum(int(r["screened"]) for r in rows if r["site"] == site) for site in ("bridge", "toll")}
    assert per_site == {"bridge": 6, "toll": 6}  # every scan in exactly one shift
    early = [r for r in rows if (r["day"], r["site"], r["shift"]) == ("2026-12-03", "toll", "22-06")]
    assert int(early[0]["screened"]) == 1  # 05:59 on the 4th belongs to the night shift that began on the 3rd

    table = run_cli("report", "--by", "shift", "--day", "2026-12-04", "--db", db_url)
    assert table.returncode == 0, table.stderr
    assert "report for 2026-12-04 (Asia/Shanghai, Asia/Urumqi)" in table.stdout and "22-06" in table.stdout
    as_json = run_cli("report", "--by", "shift", "--day", "2026-12-04", "--format", "json", "--db", db_url)
    assert sum(r["screened"] for r in json.loads(as_json.stdout)["sites"]) == 5 + 4  # as the CSV above


def test_wrong_days_and_shifts_are_refused_with_the_fix(db_url: str) -> None:
    backwards = run_cli("report", "--day", "2026-12-05..2026-12-01", "--db", db_url)
    assert backwards.returncode != 0 and "ends before it starts" in backwards.stderr
    assert "Traceback" not in backwards.stderr
    gap = run_cli("sites", "--db", db_url, "set", "bridge", "--timezone", BRIDGE, "--shifts", "08-16,16-24")
    assert gap.returncode != 0 and "hours [0, 1, 2, 3, 4, 5, 6, 7] are in no shift" in gap.stderr
    assert "Traceback" not in gap.stderr


@pytest.mark.parametrize(
    ("text", "problem"),
    [("08-16,15-24,00-08", "hours [15] are in two shifts"), ("8-", "is not HH-HH"), ("06-06", "another end"),
     ("00-25", "another end"), ("day", "is not HH-HH")],
)  # fmt: skip
def test_shifts_that_do_not_cover_the_day_once_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        shifts.parse(text)


def test_a_shift_across_a_daylight_saving_change_is_as_long_as_the_wall_clock_says() -> None:
    night = shifts.parse("22-06,06-14,14-22")[0]
    start, end = night.bounds(dt.date(2026, 3, 28), "Europe/Berlin")  # clocks go forward at 02:00 on the 29th
    assert (end - start) / 3_600_000 == 7
