"""Messages from the gateway (contract.DOWNLINK: receipt, verdict, config), checked before they are acted on.

Each payload must satisfy its contract table (message.py): a bad receipt or verdict is logged and ignored; a
bad config is refused, and the reason goes out in status as config_error. A config is applied once: the
retained copy that comes back at every connect (same bytes) is not applied again.
"""

import binascii

import contract
import message

RECEIPT, VERDICT, CONFIG = contract.DOWNLINK


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

    def on_message(self, topic, payload, retained):
        kind = topic[len(self.base) :]
        if kind not in contract.DOWNLINK:
            return
        msg, problem = message.decode(payload, contract.MESSAGES[kind])
        if msg is None:
            print("uplink: ignored", kind, "message:", problem)
            if kind == CONFIG:
                self._config_done(False, problem)
        elif kind == RECEIPT:
            self.receipts.received(msg)
            self.wake.set()
        elif kind == VERDICT:
            self.on_verdict(msg)
        else:
            self._config(payload, msg)

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
