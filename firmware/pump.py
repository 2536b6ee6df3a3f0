"""The outbox pump: unfreed records go out as scan messages, oldest first, QoS 1, at most `window` unacked.

The cursor is the highest seq published on this connection; `rewind()` starts again from the oldest unfreed
record (after a reconnect). `resend(first, last)` publishes the unfreed records first..last again before
anything new (receipts.py: their receipt is overdue). `sent(seq)` hears every new publish.
"""

import record


class Pump:
    def __init__(self, outbox, topic, identity, window, counts, sent):
        self.outbox = outbox
        self.topic = topic
        self.site = identity["site"]
        self.node = identity["node"]
        self.window = window
        self.counts = counts
        self.sent = sent
        self.cursor = -1
        self._again = None  # [published up to, last]: a resend under way

    def rewind(self):
        self.cursor = -1
        self._again = None

    def resend(self, first, last):
        self._again = [first - 1, last]

    async def run(self, c):
        """Publish (a resend first, then) records after the cursor until the window is full or none is left."""
        while c.connected and len(c.inflight) < self.window:
            again = self._again
            after = again[0] if again else self.cursor
            recs = self.outbox.pending(self.window - len(c.inflight), after)
            if again and (not recs or recs[0][0] > again[1]):
                self._again = None
                continue
            if not recs:
                return
            for seq, b in recs:
                if again and seq > again[1]:
                    break
                await self._publish(c, seq, b)
                if again:
                    again[0] = seq
                else:
                    self.cursor = seq
                    self.sent(seq)

    async def _publish(self, c, seq, b):
        try:
            body = record.to_payload(seq, b, self.site, self.node)
        except ValueError as e:  # cannot happen for what pack() wrote; never block the queue on it
            self.counts["errors"] += 1
            print("uplink: record", seq, "unreadable:", e)
            return
        await c.publish(self.topic, body, qos=1)
        self.counts["published"] += 1
