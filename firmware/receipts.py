"""The receipt policy: a record leaves the outbox only when a receipt names it, never on a PUBACK
(docs/design.md section 2).

A receipt {"v":1,"seqs":[...],"rejected":[...]} frees the records it names: stored, or kept in the gateway's
quarantine (resending those would not help). Records were published but no receipt came for
`timeout_ms`: `check()` says publish them again (the broker may have dropped them), and the wait doubles,
up to an hour, while none comes (a gateway down for hours is not flooded).
"""

_CAP_MS = 3600000


class Receipts:
    def __init__(self, outbox, clock, timeout_ms, counts):
        self.outbox = outbox
        self.clock = clock
        self.counts = counts
        self._timeout = timeout_ms
        self._wait = timeout_ms  # doubles after each resend without a receipt
        self._since = clock.ticks_ms()  # the last receipt (or check)

    def restart(self):
        """A new session: the wait starts now."""
        self._since = self.clock.ticks_ms()

    def received(self, msg):
        """A checked receipt (contract.RECEIPT): free what it names."""
        seqs = msg["seqs"] + (msg.get("rejected") or [])
        self.outbox.free(seqs)
        self.counts["receipted"] += len(seqs)
        self._since = self.clock.ticks_ms()
        self._wait = self._timeout

    def due_in(self, cursor):
        """ms until `check()` is due, None while nothing was published (cursor < 0)."""
        if cursor < 0:
            return None
        return self._wait - self.clock.ticks_diff(self.clock.ticks_ms(), self._since)

    def check(self, cursor):
        """True if the records published up to `cursor` must go again (no receipt in time)."""
        due = self.due_in(cursor)
        if due is None or due > 0:
            return False
        self._since = self.clock.ticks_ms()
        oldest = self.outbox.pending(1)
        if not oldest or oldest[0][0] > cursor:
            return False
        print("uplink: no receipt for", self._wait // 1000, "s: resending from seq", oldest[0][0])
        self.counts["resends"] += 1
        self._wait = min(2 * self._wait, _CAP_MS)
        return True
