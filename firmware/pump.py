"""The outbox pump: unfreed records go out as scan messages, oldest first, QoS 1, at most `window` unacked.

The cursor is the highest seq published on this connection; `rewind()` starts again from the oldest unfreed
record (after a reconnect, or when receipts.py says the gateway has not answered).
"""

import record


class Pump:
    def __init__(self, outbox, topic, identity, window, counts):
        self.outbox = outbox
        self.topic = topic
        self.site = identity["site"]
        self.node = identity["node"]
        self.window = window
        self.counts = counts
        self.cursor = -1

    def rewind(self):
        self.cursor = -1

    async def run(self, c):
        """Publish records after the cursor until the window is full or none is left."""
        while c.connected and len(c.inflight) < self.window:
            recs = self.outbox.pending(self.window - len(c.inflight), self.cursor)
            if not recs:
                return
            for seq, b in recs:
                try:
                    body = record.to_payload(seq, b, self.site, self.node)
                except ValueError as e:  # cannot happen for what pack() wrote; never block the queue on it
                    self.counts["errors"] += 1
                    print("uplink: record", seq, "unreadable:", e)
                    self.cursor = seq
                    continue
                await c.publish(self.topic, body, qos=1)
                self.cursor = seq
                self.counts["published"] += 1
