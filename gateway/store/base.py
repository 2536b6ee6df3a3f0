"""The store interface: what ingest, alerts, fleet and the CLI need, whatever the database.

Rows are plain dataclasses whose field names are the protocol's (docs/protocol.md) plus the gateway's own
(`gateway_verdict`, ...). Times are Unix milliseconds (UTC), as `ts` on the wire. A backend implements
`Store` and `Transaction`; gateway/store/sqlite.py is the first, PostgreSQL fits the same SQL (no SQLite-only
features in the schema: natural keys, INSERT ... ON CONFLICT DO NOTHING, no autoincrement).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.notify.outbox import Outbox


@dataclass(slots=True)
class ScanRow:
    site: str
    node: str
    seq: int
    boot: int
    ts: int | None
    uptime_ms: int
    mode: str
    t_site_c: float | None
    t_amb_c: float | None
    t_core_c: float | None  # the node's estimate
    verdict: str  # the node's verdict
    flags: tuple[str, ...]  # the node's flags
    samples: int
    duration_ms: int
    retest_of: int | None
    code: int | None = field(default=None, kw_only=True)  # retest codes (contract.SCAN; migration 0008)
    retest_code: int | None = field(default=None, kw_only=True)
    wait_s: int | None = field(default=None, kw_only=True)
    ref_gain: float | None = field(default=None, kw_only=True)  # the unit's reference correction (migration 0013)
    ref_offset_c: float | None = field(default=None, kw_only=True)
    unit: int = field(default=0, kw_only=True)  # the unit's identity; 0: the scan carried none (migration 0015)
    fw: str
    cal: str
    gateway_t_core_c: float | None
    gateway_verdict: str  # authoritative
    gateway_flags: tuple[str, ...]
    gateway_cal: str
    received_at: int
    scanned_at: int  # ts when the node's clock was synced and right, else received_at: the time reports use
    clock_skew_ms: int | None = None  # the node's clock error as judged on arrival (+ = ahead); None: not judged


@dataclass(slots=True)
class AlertRow:
    alert_id: str
    kind: str  # fever | node_offline | sensor_fault
    state: str  # raised | acknowledged | resolved | escalated
    reason: str
    site: str
    node: str
    seq: int | None  # the scan that raised it (fever, sensor_fault)
    last_seq: int | None  # the latest scan linked to it (a retest)
    t_site_c: float | None
    t_core_c: float | None
    opened_at: int
    updated_at: int
    resolved_at: int | None = None
    confirmed_at: int | None = None  # a retest confirmed the fever
    acknowledged_at: int | None = None  # medics' acknowledgement (a later issue)
    acknowledged_by: str | None = None
    events: int = 0  # number of alert_events rows
    detail: str | None = None  # for people: e.g. an identity clash names both origins (boot, fw, first seen)


@dataclass(slots=True)
class AlertEvent:
    alert_id: str
    n: int  # 1, 2, ... within the alert
    state: str
    reason: str
    at: int
    actor: str  # "gateway", later "medic:<name>"
    seq: int | None = None
    t_core_c: float | None = None
    published_at: int | None = None
    method: str | None = None  # a medic's clinical re-check: oral | axillary | tympanic | rectal
    reading_c: float | None = None  # ... and its thermometer reading
    note: str | None = None
    address: str | None = None  # where a person's action came from (the audit trail)


@dataclass(slots=True)
class NodeRow:
    site: str
    node: str
    state: str = "unknown"  # online | offline | unknown
    state_reason: str = ""  # status, last_will_or_shutdown, silent, traffic
    state_since: int | None = None
    last_seen: int | None = None
    fw: str | None = None
    boot: int | None = None
    config_id: str | None = None
    uptime_ms: int | None = None
    heap_free: int | None = None
    rssi: int | None = None
    outbox_depth: int | None = None
    outbox_drops: int | None = None
    sensor_errors: int | None = None
    supply_v: float | None = None
    health_at: int | None = None
    last_seq: int | None = None
    scans: int = 0  # scans stored for this node
    outbox_errors: int | None = None
    task_restarts: int | None = None
    config_error: str | None = None  # why the node refused its last pushed config (None: applied)
    auth_refused: int | None = None  # downlink commands it refused (a MAC or counter) since its boot (migration 0014)
    auth_error: str | None = None  # the last one's kind and why, e.g. "receipt: bad_signature" (never a secret)
    taken_over: int | None = None  # sessions the broker ended under it while its link was up, since its boot (0016)


@dataclass(slots=True)
class QuarantineRow:
    received_at: int
    topic: str
    reason: str
    size: int
    payload: bytes  # the first 256 bytes (seq_conflict: the whole scan, so nothing is lost)
    site: str | None = None
    node: str | None = None


@dataclass(slots=True)
class QuarantineSource:
    """Refused messages counted per source (gateway/quarantine.py), kept as rows or dropped by the limits."""

    source: str  # "site/node", the topic's root, or "*" (sources past the named ones)
    first_at: int
    last_at: int
    last_reason: str
    kept: int
    dropped: int
    identity_row: int  # 1: its one unknown_identity row is stored


@dataclass(slots=True)
class SiteReport:
    site: str
    screened: int = 0  # travellers: scans that are not retests
    retests: int = 0
    normal: int = 0
    elevated: int = 0
    confirmed: int = 0  # fever alerts whose retest confirmed the fever
    indeterminate: int = 0
    invalid: int = 0
    nodes_up: int = 0  # nodes whose fleet state is online (now)
    rechecked: int = 0  # fever alerts of the day with at least one clinical re-check
    cleared: int = 0  # fever alerts resolved by a medic with this outcome ...
    referred: int = 0
    monitored: int = 0  # home medical observation
    turned_back: int = 0


@dataclass(slots=True)
class SiteRow:
    site: str
    name: str
    county: str
    timezone: str  # IANA name; every time of this site is shown in it
    shifts: str = ""  # e.g. "08-16,16-24,00-08" (gateway/shifts.py); "" = shifts.DEFAULT


@dataclass(slots=True)
class UserRow:
    username: str
    role: str  # medic | coordinator | admin
    password_hash: str  # argon2id (gateway/web/auth.py), never the password
    sites: str  # comma-separated site ids the user works at
    county: str  # a coordinator's county ("" = none): every site of it
    locale: str  # "" = the browser's
    disabled: int
    created_at: int
    password_changed_at: int


@dataclass(slots=True)
class SessionRow:
    session_id: str  # a keyed hash of the cookie's token: the token itself is never stored
    username: str
    csrf: str
    created_at: int
    expires_at: int
    address: str


@dataclass(slots=True)
class FollowupRow:
    """Personal details for the follow-up of a fever (gateway/followup.py): seen by its site's medics only."""

    alert_id: str
    name: str
    phone: str
    plate: str  # a vehicle's number plate
    note: str
    recorded_at: int
    recorded_by: str  # "medic:<name>"


@dataclass(slots=True)
class MaintenanceRow:
    """A planned maintenance window (gateway/maintenance.py): [starts_at, ends_at) in Unix ms."""

    site: str
    node: str  # a node, or "*" (alerts.WHOLE_POST): every node of the site
    starts_at: int
    ends_at: int
    note: str
    created_by: str  # "cli:<OS user>"
    created_at: int


@dataclass(slots=True)
class NodeConfigRow:
    """The last config pushed to a node (push-config): sent again when it comes online on a broker cluster."""

    site: str
    node: str
    config_id: str
    body: str  # the push's JSON, unsigned (the service signs what it sends for a registered node)
    pushed_at: int


@dataclass(slots=True)
class ReferenceRow:
    """One reference check of a node (gateway/reference.py): its two points, the correction that follows, the
    config that carried it to the node, who checked it and when."""

    site: str
    node: str
    checked_at: int
    ref_lo_c: float  # the reference temperature, C
    read_lo_c: float  # the node's reading of it, C
    ref_hi_c: float
    read_hi_c: float
    gain: float  # reading = gain * true + offset_c
    offset_c: float
    config_id: str  # the pushed config that carries it
    checked_by: str  # "cli:<OS user>"


@dataclass(slots=True)
class AuditRow:
    """One line of the audit log (gateway/audit.py): who, when, what, on what, from where."""

    at: int
    actor: str  # "medic:<name>", "cli:<OS user>", or the user name tried at a refused login ("" if unknown)
    action: str  # audit.ACTIONS
    target: str  # the account, site or alert acted on
    address: str  # the client's address ("" from the CLI)
    detail: str


def columns(row_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(row_type))


class Transaction(Protocol):
    def insert_scans(self, rows: list[ScanRow]) -> list[bool]:
        """Insert or ignore each row by (site, node, seq); for each, True when it is new (the first of
        duplicates within `rows` counts as new)."""
        ...

    def insert_quarantine(self, row: QuarantineRow) -> None: ...

    def count_quarantine(self, source: str, reason: str, kept: bool, at: int) -> None:
        """Count one refused message against its source (quarantine_sources), its row kept or dropped."""
        ...

    def raise_counter(self, name: str, ceiling: int) -> None:
        """downlink_counters[name] = max(stored, ceiling) (gateway/signing.py)."""
        ...

    def scan_origin(self, site: str, node: str, seq: int) -> tuple[int, int, int] | None:
        """(boot, uptime_ms, unit) of the stored scan: a resend carries the same; a node that reuses a seq does
        not."""
        ...

    def stored_scan(self, site: str, node: str, seq: int) -> ScanRow | None:
        """The scan stored under (site, node, seq) in `scans`."""
        ...

    def insert_clash(self, row: ScanRow) -> bool:
        """Keep a scan whose (site, node, seq) is stored with another origin (scan_clashes, keyed by its origin
        too); True when it is new (a resend of the same clashing scan is not)."""
        ...

    def save_node(self, row: NodeRow) -> None: ...

    def fever_alert_for(self, site: str, node: str, seq: int) -> AlertRow | None:
        """The fever alert raised by, or last updated by, this scan."""
        ...

    def case_scan(self, site: str, code: int, since: int) -> tuple[str, int] | None:
        """(node, seq) of the newest scan of the site that opened the case `code` (retest_code null), received
        at or after `since`: what a retest naming the code links to, from any node of the site."""
        ...

    def node_config(self, site: str, node: str) -> NodeConfigRow | None:
        """The last config pushed to the node, if any."""

    def maintenance_at(self, site: str, node: str, at: int) -> MaintenanceRow | None:
        """The window covering `at` for the node (its own, or one for the whole site), the latest-ending one."""

    def maintenance_ended(self, after: int, until: int) -> list[MaintenanceRow]:
        """The windows that ended in (after, until]."""

    def save_maintenance(self, row: MaintenanceRow) -> None:
        """Add (or replace: same site, node and start) a window."""

    def save_node_config(self, row: NodeConfigRow) -> None:
        """Keep `row` as the node's last pushed config (replacing the one before)."""

    def save_reference(self, row: ReferenceRow) -> None:
        """Add a node's reference check to its history."""

    def open_alert(self, kind: str, site: str, node: str) -> AlertRow | None:
        """The newest alert of this kind on this node that is not resolved."""
        ...

    def save_alert(self, alert: AlertRow, event: AlertEvent) -> None:
        """Insert or update the alert and append its event."""
        ...

    def mark_published(self, events: list[tuple[str, int]], at: int) -> None: ...

    def alert(self, alert_id: str) -> AlertRow | None: ...

    def update_alert(self, alert: AlertRow, event: AlertEvent, seen_events: int) -> bool:
        """Save a person's change of an alert if nobody changed it since they read it (its event counter is
        still `seen_events`); False when someone else won."""
        ...

    def save_site(self, row: SiteRow) -> None: ...

    def outbox(self) -> Outbox:
        """The notification outbox on this transaction (gateway/notify/outbox.py); save_alert and update_alert
        enqueue each event's notification through it."""
        ...

    def save_user(self, row: UserRow) -> None: ...

    def save_session(self, row: SessionRow) -> None: ...

    def delete_sessions(self, username: str | None = None, session_id: str | None = None) -> None: ...

    def record_login_failure(self, username: str, address: str, at: int) -> None: ...

    def forget_login_failures(self, before: int) -> None: ...

    def save_followup(self, row: FollowupRow) -> None:
        """Insert or replace the follow-up details of `row.alert_id`."""
        ...

    def forget_followups(self, before: int) -> int:
        """Delete the follow-up details recorded before `before` (Unix ms); how many went."""
        ...

    def record_audit(self, row: AuditRow) -> None: ...

    def forget_audit(self, before: int) -> int:
        """Delete the audit rows older than `before` (Unix ms); how many went."""
        ...


class Store(Protocol):
    url: str

    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def check_writable(self) -> None:
        """A write, rolled back: raises StorageFault naming the fix when the database cannot be written at all
        (a read-only file, directory or filesystem). Run at start, so the gateway never says "storing" first."""
        ...

    def nodes(self, site: str | None = None) -> list[NodeRow]: ...

    def unpublished_events(self) -> list[tuple[AlertRow, AlertEvent]]: ...

    def alert_states(self, resolved_since: int) -> list[tuple[AlertRow, AlertEvent]]:
        """Every open alert, and every alert resolved at or after `resolved_since`, each with its latest event
        (the retained per-alert state the gateway publishes again on every connection to the broker)."""
        ...

    def clashes(self, since: int | None, until: int | None, site: str | None) -> Iterator[ScanRow]:
        """Scans kept in scan_clashes (another origin under a stored (site, node, seq)), by scanned_at."""
        ...

    def scans(self, since: int | None, until: int | None, site: str | None) -> Iterator[ScanRow]: ...

    def alerts(
        self, since: int | None, until: int | None, site: str | None, open_only: bool = False
    ) -> list[AlertRow]: ...

    def alert_events(self, alert_id: str) -> list[AlertEvent]: ...

    def quarantine(self, since: int | None, until: int | None, site: str | None) -> Iterator[QuarantineRow]: ...

    def quarantine_sources(self) -> list[QuarantineSource]: ...

    def counter(self, name: str) -> int:
        """The stored downlink counter ceiling of `name` (0: none yet)."""
        ...

    def report(self, start: int, end: int) -> list[SiteReport]: ...

    def alert(self, alert_id: str) -> AlertRow | None: ...

    def events_since(self, at: int) -> list[tuple[AlertRow, AlertEvent]]:
        """Alert events at or after `at` (Unix ms), oldest first, with their alert as it is now."""
        ...

    def sites(self) -> list[SiteRow]: ...

    def maintenance(self, ending_after: int) -> list[MaintenanceRow]:
        """The maintenance windows that end after `ending_after` (Unix ms): current and planned ones."""
        ...

    def references(self, site: str | None = None, node: str | None = None) -> list[ReferenceRow]:
        """Reference checks (of a site, of a node), by site, node and time, oldest first."""
        ...

    def users(self) -> list[UserRow]: ...

    def user(self, username: str) -> UserRow | None: ...

    def session(self, session_id: str, now: int) -> SessionRow | None:
        """The session if it has not expired."""
        ...

    def login_failures(self, username: str, address: str, since: int) -> tuple[int, int]:
        """Failed logins since `since`: (for this account, from this address)."""
        ...

    def followup(self, alert_id: str) -> FollowupRow | None:
        """The alert's follow-up details: callers show them to the medics of its site only (gateway/followup.py)."""
        ...

    def audit(self, since: int | None, until: int | None) -> list[AuditRow]:
        """The audit log in [since, until) (Unix ms; None: open), oldest first."""
        ...

    def close(self) -> None: ...
