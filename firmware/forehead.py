"""The forehead strategy (handheld sweep, wide-FOV BAA/BCC): sweep and keep the robust peak.

The peak is the max of the 3-sample running median, so a single spike (a lamp, an earring) never becomes the
reading. The sweep ends after `sweep_ms`, once MIN_SETTLED samples came after twice the settling time (99 % of a
step for the sensor's first-order lag), or at `max_ms`; or earlier when the target leaves (scanner.py). A
peak counts as settled once a reading within SETTLED_C of it came after the settling time; else not_settled.
A wide spread over the settled part, or the target leaving more than once, is unstable.
"""

MIN_SETTLED = 3  # samples after twice the settling time before a sweep may end (one whole median)
SETTLED_C = 0.5


class Forehead:
    def __init__(self, conf):
        self.s = conf
        self.start()

    def start(self):
        self.peak = None
        self._late = None  # the peak of the medians after twice the settling time
        self._m1 = self._m2 = None
        self._sum = self._sq = 0.0
        self._k = 0

    def sample(self, scan, elapsed, t):
        """One reading `t` (C) at `elapsed` ms: None while sweeping, else (t_site, flag) to end the scan."""
        s = self.s
        m1, m2 = self._m1, self._m2
        med = None
        if m2 is not None:  # running median of 3: a single spike never becomes the peak
            med = max(min(m1, m2), min(max(m1, m2), t))
            if self.peak is None or med > self.peak:
                self.peak = med
        self._m1, self._m2 = t, m1
        if elapsed >= 2 * s["settle_ms"]:  # 99 % of a step (90 % at the settling time, first-order lag)
            if med is not None and (self._late is None or med > self._late):
                self._late = med
            self._k += 1
            self._sum += t
            self._sq += t * t
        if (elapsed < s["sweep_ms"] or self._k < MIN_SETTLED) and elapsed < s["max_ms"]:
            return None
        return self.end(scan)

    def left(self, scan):
        """The target left mid-sweep: the peak if it was held long enough, else not_settled."""
        if self._settled():
            return self.end(scan)
        return (self.peak if self.peak is not None else scan.last_t), "not_settled"

    def _settled(self):
        """The peak was held after the settling time (not a reading caught on the way up or down)."""
        if self._k < MIN_SETTLED or self._late is None or self.peak is None:
            return False
        return self._late >= self.peak - SETTLED_C

    def end(self, scan):
        s = self.s
        flag = None if self._settled() else "not_settled"
        if flag is None and self._k > 1:
            mean = self._sum / self._k
            if self._sq / self._k - mean * mean > s["unstable_c"] * s["unstable_c"] or scan.drops > 1:
                flag = "unstable"
        return (self.peak if self.peak is not None else scan.last_t), flag
