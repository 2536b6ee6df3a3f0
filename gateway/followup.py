"""Personal details for the follow-up of a fever (issue 12 item 8): name, phone, vehicle plate and a note.

- Recorded only with an outcome that needs follow-up (FOR_OUTCOMES: referred to a fever clinic, home medical
  observation, turned back), when a medic resolves the alert; refused with any other outcome.
- Kept in their own table (`followups`, one row per alert), never on a scan or an alert event: coordinators,
  exports, reports, notifications and MQTT topics read those, not this.
- Shown to the medics of the alert's site only (the caller checks, gateway/web/auth.py Visitor.acts_on); each
  showing is written to the audit log (`read`).
- Deleted [web] followup_days (default 28) after they were recorded, by every run of
  `checkpoint-gateway retention` (`forget`).
- Never logged: nothing here logs, and errors name the field and the rule, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway import alerts, audit
from gateway.store.base import FollowupRow, Store, Transaction

FOR_OUTCOMES = ("referred", "monitored", "turned_back")  # gateway/alerts.py OUTCOMES that need a follow-up
FIELDS = ("name", "phone", "plate", "note")
FORM_PREFIX = "followup_"  # form and JSON keys: followup_name, followup_phone, followup_plate, followup_note
MAX_CHARS = {"name": 100, "phone": 20, "plate": 16, "note": 500}
_PHONE = re.compile(r"[0-9 +\-]*\Z")
DAY_MS = 86_400_000


class Refused(alerts.Refused):
    """Details that may not be kept: the message names the field and the rule, never what was typed."""


@dataclass(frozen=True)
class Details:
    name: str = ""
    phone: str = ""
    plate: str = ""
    note: str = ""

    def __bool__(self) -> bool:
        return any((self.name, self.phone, self.plate, self.note))


def parse(form: Mapping[str, Any], outcome: str) -> Details:
    """The details in a resolve form or JSON body (FORM_PREFIX keys; all optional; surrounding space dropped).
    Empty Details when none is given. Raises Refused: any of them with an outcome not in FOR_OUTCOMES, a field
    longer than MAX_CHARS, a phone with other than digits, spaces, + and -, control characters."""
    values = {f: str(form.get(FORM_PREFIX + f) or "").strip() for f in FIELDS}
    details = Details(**values)
    if details and outcome not in FOR_OUTCOMES:
        raise Refused(f"personal details are kept only for a follow-up ({', '.join(FOR_OUTCOMES)}), not with"
                      f" outcome {outcome!r}: leave name, phone, plate and note empty")  # fmt: skip
    for f in FIELDS:
        if len(values[f]) > MAX_CHARS[f]:
            raise Refused(f"{f}: at most {MAX_CHARS[f]} characters (given {len(values[f])})")
        if any(unicodedata.category(ch) == "Cc" for ch in values[f]):
            raise Refused(f"{f}: one line of text, without control characters")
    if not _PHONE.match(details.phone):
        raise Refused("phone: digits, spaces, + and - only, e.g. +86 138-0013-8000")
    return details


def record(tx: Transaction, alert_id: str, details: Details, actor: str, address: str, now: int) -> FollowupRow:
    """Save the details of an alert (in the transaction of its resolve event) and an audit line without them."""
    row = FollowupRow(alert_id, details.name, details.phone, details.plate, details.note, now, actor)
    tx.save_followup(row)
    audit.record(tx, now, actor, "followup_recorded", alert_id, address)
    return row


def read(store: Store, alert_id: str, actor: str, address: str, now: int) -> FollowupRow | None:
    """The details of an alert for a medic of its site (the caller has checked), and an audit line saying who
    looked, when and from where (none when there is nothing to see)."""
    row = store.followup(alert_id)
    if row is not None:
        with store.transaction() as tx:
            audit.record(tx, now, actor, "followup_viewed", alert_id, address)
    return row


def forget(store: Store, now: int, days: int) -> int:
    """Delete the details recorded more than `days` days before `now` (Unix ms); how many went."""
    with store.transaction() as tx:
        return tx.forget_followups(now - days * DAY_MS)
