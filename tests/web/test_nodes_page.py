"""The nodes page (issue 12 item 6): offline nodes first, then unhealthy ones, each with its last scan, outbox,
free heap, signal, supply and sensor errors; and a node's planned maintenance window (item 5), in the site's zone,
to the people who see the site: a window for the whole post on each of its nodes, nothing for another county's;
commands a node refused (forged or replayed) and its open forged_command alert (issue 11 audit)."""

from __future__ import annotations

from starlette.testclient import TestClient

from gateway import alerts
from gateway.store.base import MaintenanceRow, NodeRow, Store

from .conftest import T0
from .test_routes import client, clock, login, store  # noqa: F401  (the console's fixtures, shared)

HOUR = 3_600_000


def test_the_nodes_page_shows_the_window_of_a_planned_down_post(client: TestClient, store: Store) -> None:  # noqa: F811
    with store.transaction() as tx:
        for site, node in (("bridge", "n1"), ("bridge", "n2"), ("toll", "t1")):
            tx.save_node(NodeRow(site, node, "offline", "status", T0, T0))
        tx.save_maintenance(MaintenanceRow("bridge", "*", T0 - HOUR, T0 + 2 * HOUR, "power cut", "cli:ops", T0))
        tx.save_maintenance(MaintenanceRow("toll", "*", T0 - HOUR, T0 + HOUR, "toll work", "cli:ops", T0))
    login(client, "chen")  # the east county: the bridge
    page = client.get("/nodes").text
    rows = {r.split('"', 1)[0]: r for r in page.split('data-node="')[1:]}
    assert set(rows) == {"bridge/n1", "bridge/n2"}
    for row in rows.values():
        assert "计划维护（不告警）" in row and "power cut" in row
        assert "2026-12-01 08:45:56 CST (Asia/Shanghai)" in row  # its end, local, the zone named
    assert "toll work" not in page


def test_offline_then_unhealthy_nodes_first_with_their_health(client: TestClient, store: Store) -> None:  # noqa: F811
    with store.transaction() as tx:
        tx.save_node(NodeRow("bridge", "a-fine", "online", "status", T0, T0, heap_free=65_536, rssi=-67,
                             supply_v=3.71, last_seq=120, scans=121))  # fmt: skip
        tx.save_node(NodeRow("bridge", "b-faulty", "online", "status", T0, T0, sensor_errors=2, last_seq=7, scans=8))
        tx.save_node(NodeRow("bridge", "c-dark", "offline", "silent", T0, T0))
    login(client, "li")  # a medic of the bridge
    page = client.get("/nodes").text
    order = [r.split('"', 1)[0] for r in page.split('data-node="')[1:]]
    assert order == ["bridge/c-dark", "bridge/b-faulty", "bridge/a-fine"]
    fine = page.split('data-node="bridge/a-fine"')[1].split("</tr>")[0]
    assert "64.0 KiB" in fine and "-67 dBm" in fine and "3.71 V" in fine and "120 <small>(121)</small>" in fine
    faulty = page.split('data-node="bridge/b-faulty"')[1].split("</tr>")[0]
    assert "传感器错误 2" in faulty


def test_a_node_that_refused_forged_commands_shows_them_and_its_open_alert(
    client: TestClient,  # noqa: F811
    store: Store,  # noqa: F811
) -> None:
    """The count and last reason the node reports (a node first among the online ones), and the open
    forged_command alert, which stays on the page after a reboot cleared the node's count until it is closed."""
    seen = alerts.raise_node(alerts.FORGED_COMMAND, "bridge", "b-forged", "auth_refused", T0, detail="2 refused")
    rebooted = alerts.raise_node(alerts.FORGED_COMMAND, "bridge", "c-rebooted", "auth_refused", T0 - HOUR)
    with store.transaction() as tx:
        tx.save_node(NodeRow("bridge", "a-fine", "online", "status", T0, T0))
        tx.save_node(NodeRow("bridge", "b-forged", "online", "status", T0, T0, auth_refused=2,
                             auth_error="receipt: bad_signature"))  # fmt: skip
        tx.save_node(NodeRow("bridge", "c-rebooted", "online", "status", T0, T0))
        for change in (seen, rebooted):
            tx.save_alert(change.alert, change.event)
    login(client, "li")
    page = client.get("/nodes").text
    order = [r.split('"', 1)[0] for r in page.split('data-node="')[1:]]
    assert order == ["bridge/b-forged", "bridge/a-fine", "bridge/c-rebooted"]
    cells = {n: page.split(f'data-node="bridge/{n}"')[1].split("</tr>")[0].split('class="error refused">')[1]
             for n in ("a-fine", "b-forged", "c-rebooted")}  # fmt: skip
    assert cells["b-forged"].startswith("2 (receipt: bad_signature)")
    assert f'<a href="/alerts/{seen.alert.alert_id}">设备拒绝了伪造的指令</a>' in cells["b-forged"]
    assert f'<a href="/alerts/{rebooted.alert.alert_id}">' in cells["c-rebooted"]
    assert cells["a-fine"].startswith("</td>")


def test_a_node_whose_sessions_were_taken_over_shows_the_count_and_its_open_clash(
    client: TestClient,  # noqa: F811
    store: Store,  # noqa: F811
) -> None:
    """Issue 10 kind 1: taken_over (sessions the broker ended under the node while its link was up: another unit
    with its name, most often) is shown with the node's open identity_clash alert, the node among the unhealthy."""
    clash = alerts.raise_node(alerts.IDENTITY_CLASH, "bridge", "b-twice", "taken_over", T0, detail="3 times")
    with store.transaction() as tx:
        tx.save_node(NodeRow("bridge", "a-fine", "online", "status", T0, T0))
        tx.save_node(NodeRow("bridge", "b-twice", "online", "status", T0, T0, taken_over=4))
        tx.save_alert(clash.alert, clash.event)
    login(client, "li")
    page = client.get("/nodes").text
    order = [r.split('"', 1)[0] for r in page.split('data-node="')[1:]]
    assert order == ["bridge/b-twice", "bridge/a-fine"]
    cells = {n: page.split(f'data-node="bridge/{n}"')[1].split("</tr>")[0].split('class="error taken-over"')[1]
             for n in ("a-fine", "b-twice")}  # fmt: skip
    assert cells["b-twice"].split(">", 1)[1].startswith("4 ")
    assert f'<a href="/alerts/{clash.alert.alert_id}">设备身份冲突</a>' in cells["b-twice"]
    assert "<a " not in cells["a-fine"] and "会话被接管" in page
