"""The receipt policy: a record leaves the outbox only when a receipt names it, never on a PUBACK
(docs/design.md section 2).

A receipt {"v":1,"seqs":[...],"rejected":[...]} frees the records it names: stored, or kept whole in the
gateway's quarantine (resending those would not help; they are counted as `rejected`). With `origins` (and
`rejected_origins`), each seq's contract.origin(boot, uptime_ms, unit), it frees only the records that are this unit's
scans: two units under one name share the receipt topic, and the other's seq 3 is not this one's (its record
waits for its own receipt). A receipt without them frees by seq, as before. Every record published
and not receipted within `timeout_ms` of its own publishing is published again (`due()`), oldest first,
whatever else was receipted meanwhile: a hole in the receipts is refilled. The wait doubles, up to an hour,
while no receipt at all comes (a gateway down for hours is not flooded).

Publish times are kept per burst, not per record (the heap is small): `_sent` holds [first seq, tick] in seq
order, a new entry at most every _BURST_MS; a record counts as published at its entry's tick, which is at or
before its real publish time, so it may be resent up to that much early, never late.
"""

import contract
import record

_CAP_MS = 3600000
_BURST_MS = 1000
_ENTRIES = 8


class Receipts:
    def __init__(self, outbox, clock, timeout_ms, counts):
        self.outbox = outbox
        self.clock = clock
        self.counts = counts
        counts["rejected"] = 0
        self._timeout = timeout_ms
        self._wait = timeout_ms  # doubles after each resend without any receipt
        self._heard = True  # a receipt came since the last resend
        self._sent = []

    def restart(self):
        """A new session: everything unfreed is published again from the oldest (pump.rewind())."""
        self._sent = []

    def sent(self, seq):
        """The pump published `seq` (beyond everything published before on this session) now."""
        now = self.clock.ticks_ms()
        s = self._sent
        if s and self.clock.ticks_diff(now, s[-1][1]) < _BURST_MS:
            return
        s.append([seq, now])
        if len(s) > _ENTRIES:  # merge the two entries closest in time (the later one's records count as older)
            gaps = [self.clock.ticks_diff(s[i + 1][1], s[i][1]) for i in range(len(s) - 1)]
            del s[gaps.index(min(gaps)) + 1]

    def received(self, msg):
        """A checked receipt (contract.RECEIPT): free what it names (this unit's, when it names origins)."""
        self.counts["receipted"] += self._free(msg["seqs"], msg.get("origins"))
        self.counts["rejected"] += self._free(msg.get("rejected") or [], msg.get("rejected_origins"))
        self._heard = True
        self._wait = self._timeout

    def _free(self, seqs, origins):
        """How many of `seqs` were freed: with `origins` (paired with seqs, else none is), only the records whose
        origin is the one named beside their seq (read 8 at a time)."""
        if origins is not None and seqs:
            named = dict(zip(seqs, origins)) if len(origins) == len(seqs) else {}  # seq -> origin, one lookup each
            mine, after, last = [], min(seqs) - 1, max(seqs) if named else -1
            while after < last:
                recs = self.outbox.pending(8, after)
                for seq, b in recs:
                    if seq not in named:
                        continue
                    d = record.unpack(b)
                    if named[seq] == contract.origin(d["boot"], d["uptime_ms"], d["unit"]):
                        mine.append(seq)
                after = recs[-1][0] if recs else last
            seqs = mine
        return len(self.outbox.free(seqs))

    def due_in(self, cursor):
        """ms until `due()` may have work, None while nothing was published (cursor < 0)."""
        if cursor < 0 or not self._sent:
            return None
        now = self.clock.ticks_ms()
        return self._wait - max([self.clock.ticks_diff(now, e[1]) for e in self._sent])

    def due(self, cursor):
        """(first, last): the oldest unreceipted records whose wait is over, to publish again now; or None."""
        due = self.due_in(cursor)
        if due is None or due > 0:
            return None
        self._prune(cursor)
        s, now = self._sent, self.clock.ticks_ms()
        i = 0
        while i < len(s) and self.clock.ticks_diff(now, s[i][1]) >= self._wait:
            i += 1
        if i == 0:
            return None
        first, last = s[0][0], (s[i][0] - 1 if i < len(s) else cursor)
        s[:i] = [[first, now]]
        print("uplink: no receipt for", self._wait // 1000, "s: resending seqs", first, "to", last)
        self.counts["resends"] += 1
        if not self._heard:
            self._wait = min(2 * self._wait, _CAP_MS)
        self._heard = False
        return first, last

    def _prune(self, cursor):
        """Drop the entries whose records are all freed (a flash read: only when an entry's wait is over)."""
        oldest = self.outbox.pending(1)
        s = self._sent
        if not oldest or oldest[0][0] > cursor:
            s[:] = []
            return
        seq = oldest[0][0]
        while len(s) > 1 and s[1][0] <= seq:
            del s[0]
        if s and s[0][0] < seq:
            s[0][0] = seq
