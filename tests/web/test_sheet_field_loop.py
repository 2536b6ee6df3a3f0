"""The day sheet's field loop (issue 15, item 5): medics' clinical re-checks made on the console show as the
bias of the infrared estimate, the false-alarm share and PPV per site and node, in Chinese and English."""

from __future__ import annotations

from starlette.testclient import TestClient

from gateway.store.base import Store

from .conftest import T0, csrf_of, raise_fever
from .test_routes import client, clock, login, store  # noqa: F401  (the console's fixtures, shared)


def test_the_sheet_shows_the_field_loop_of_the_rechecks(client: TestClient, store: Store) -> None:  # noqa: F811
    ids = [raise_fever(store, "bridge", "n1", seq, T0 + seq) for seq in (1, 2)]  # IR estimate 38.49 C each
    login(client, "li")
    csrf = csrf_of(client.get(f"/alerts/{ids[0]}").text)
    for alert_id, reading in zip(ids, ("38.29", "37.09"), strict=True):  # IR - clinical: +0.20, +1.40
        r = client.post(f"/alerts/{alert_id}/recheck", data={"csrf": csrf, "method": "oral", "reading_c": reading})
        assert r.status_code == 303
    login(client, "chen")
    page = client.get("/sheet?day=2026-12-01").text
    assert "现场复核" in page
    row = page.split('data-where="bridge/n1"')[1].split("</tr>")[0]
    # n 2, bias +0.80, SD sqrt(2 * 0.6^2) = 0.85, 2 elevated, one below 37.3 C: 50% false alarms, PPV 50%
    cells = [c.split(">")[1].split("<")[0] for c in row.split("<td")[1:]]
    assert cells == ["bridge/n1", "2", "+0.80", "0.85", "2", "50%", "50%"]
    empty = client.get("/sheet?day=2026-11-30").text
    assert "当日无体温计复测记录。" in empty and 'data-where="' not in empty
