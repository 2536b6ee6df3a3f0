"""Messages from the gateway (contract.DOWNLINK: receipt, verdict, config), checked before they are acted on.

A node with a key (broker.hmac_key) first checks each payload's MAC and then its counter (auth.py): an
unsigned, forged or replayed message is refused before anything is done with it, counted, and the count and
the last reason go out in status (auth_refused, auth_error). Without a key the node trusts its broker (protocol
v1 as before; docs/security.md). Then each payload must satisfy its contract table (message.py): a bad receipt
or verdict is logged and ignored; a bad config is refused, and the reason goes out in status as config_error.
A config is applied once: the retained copy that comes back at every connect (same bytes) is not applied again.
A verdict that names an origin (contract.origin of its scan) is shown only if this unit made that scan: two units
under one name share the verdict topic. The origins of the last _MADE scans are kept; a verdict on an older scan
that names an origin is late anyway (node.py) and only logged.
"""

import binascii

import contract
import message

RECEIPT, VERDICT, CONFIG = contract.DOWNLINK
_MADE = 16  # scans whose origin is kept


class Downlink:
    def __init__(self, base, receipts, session, on_config, on_verdict, wake):
        """base: the node's topic prefix ("checkpoint/v1/site/node/"); wake: the uplink's Event."""
        self.base = base
        self.receipts = receipts
        self.session = session
        self.on_config = on_config
        self.on_verdict = on_verdict
        self.wake = wake
        self.status_due = False  # a config was applied or refused: status must say so
        self._config_crc = None  # the config payload applied last
        self._made = {}  # seq -> origin of this unit's latest scans
        self.guard = None
        key = session.broker.get("hmac_key")
        if key:
            import auth

            self.guard = auth.Guard(key, receipts.outbox.dir + ".ctr")  # the counters, beside the outbox

    def on_message(self, topic, payload, retained):
        kind = topic[len(self.base) :]
        if kind not in contract.DOWNLINK or not payload:  # empty: a retained message cleared, not a message
            return
        msg, problem = self._authentic(kind, topic, payload)
        if msg is False:
            return
        if msg is None:
            print("uplink: ignored", kind, "message:", problem)
            if kind == CONFIG:
                self._config_done(False, problem)
        elif kind == RECEIPT:
            self.receipts.received(msg)
            self.wake.set()
        elif kind == VERDICT:
            o = msg.get("origin")
            if o is None or self._made.get(msg["seq"]) == o:  # no origin: an older gateway
                self.on_verdict(msg)
            else:
                print("downlink: verdict on seq", msg["seq"], "not for this unit's scan: not shown")
        else:
            self._config(payload, msg)

    def made(self, seq, scan):
        """This unit recorded `scan` under `seq` (None: not recorded): a verdict naming its origin is its own."""
        if seq is not None:
            self._made[seq] = contract.origin(scan["boot"], scan["uptime_ms"], scan.get("unit"))
            if len(self._made) > _MADE:
                del self._made[min(self._made)]

    def _authentic(self, kind, topic, payload):
        """(message, None) to act on; (None, problem) for one the contract refuses; (False, None) for one refused
        or ignored here (its MAC or counter: auth.py). The MAC is checked before the payload is parsed."""
        guard = self.guard
        why = None if guard is None else guard.signed(topic, payload)
        if why is not None:
            self._refused(kind, why)
            return False, None
        msg, problem = message.decode(payload, contract.MESSAGES[kind])
        if msg is None:
            return None, problem
        why = None if guard is None else guard.fresh(kind, msg)
        if why is not None:  # "": the same message again (QoS 1 redelivery, the retained config)
            if why:
                self._refused(kind, why)
            return False, None
        msg.pop("ctr", None)  # the envelope, not the command
        msg.pop("sig", None)
        return msg, None

    def _refused(self, kind, why):
        print("downlink: refused", kind, "message:", why)
        s = self.session
        s.auth_refused += 1
        s.auth_error = kind + ": " + why
        self.status_due = True
        self.wake.set()

    def _config(self, payload, msg):
        crc = binascii.crc32(payload)
        if crc != self._config_crc:
            ok, reason = self.on_config(msg)
            self._config_crc = crc if ok else None
            self._config_done(ok, reason)

    def _config_done(self, ok, reason):
        self.session.config_error = None if ok else (reason or "rejected")
        self.status_due = True
        self.wake.set()
