"""The scan button (to GND, internal pull-up: pressed reads 0), debounced into press events.

"short": released after at least `min_ms` (a bounce is shorter) and before `long_ms`: starts a scan.
"long": held for `long_ms` (sent once, while still held): arms a retest of the last scan (scanner.py).
"""


class Button:
    """Debounced button: update(pressed, now, diff) -> None, "short" or "long"."""

    def __init__(self, long_ms=1000, min_ms=30):
        self.long_ms = long_ms
        self.min_ms = min_ms
        self._down = None
        self._long_sent = False

    def update(self, pressed, now, diff):
        if pressed:
            if self._down is None:
                self._down = now
                self._long_sent = False
            elif not self._long_sent and diff(now, self._down) >= self.long_ms:
                self._long_sent = True
                return "long"
            return None
        if self._down is None:
            return None
        held = diff(now, self._down)
        self._down = None
        if not self._long_sent and held >= self.min_ms:
            return "short"
        return None
