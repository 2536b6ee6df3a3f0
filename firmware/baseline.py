"""The lane baseline commercial screening cameras use: the trimmed mean of a node's last N usable site readings.

A reading 1 C above it is "above_baseline" (elevated), 2 C below "below_baseline" (indeterminate); screening.assess
turns those flags into verdicts. The caller owns one Baseline per node and mode. MicroPython subset.
"""

from contract import VERDICTS

_USABLE = VERDICTS[:2]  # normal, elevated


class Baseline:
    """Trimmed mean of the last `n` usable site readings of one node and mode (a lane baseline).

    `trim` is the share of readings dropped at each end before averaging (0.2 of 10: the 2 lowest and the 2
    highest). The baseline is not ready, and flags nothing, until it holds `n` readings.
    """

    def __init__(self, n=10, trim=0.2):
        if n < 1 or not 0 <= trim < 0.5:
            raise ValueError("baseline: n >= 1 and 0 <= trim < 0.5")
        self.n = n
        self.trim = trim
        self._values = []

    def add(self, t_site):
        self._values.append(t_site)
        if len(self._values) > self.n:
            self._values.pop(0)

    def update(self, t_site, verdict, flags=()):
        """Feed one scan's result. Usable readings that are not above the baseline enter it: normal ones, and
        ones elevated only by the absolute threshold (a node that reads high must not starve its baseline)."""
        if t_site is None or "above_baseline" in flags:
            return
        if verdict in _USABLE:
            self.add(t_site)

    def value(self):
        """The trimmed mean (C), or None until `n` readings are in."""
        if len(self._values) < self.n:
            return None
        v = sorted(self._values)
        cut = int(len(v) * self.trim)
        if cut:
            v = v[cut:-cut]
        return sum(v) / len(v)

    def above(self, t_site, offset_c=1.0):
        b = self.value()
        return b is not None and t_site >= b + offset_c

    def below(self, t_site, offset_c=2.0):
        b = self.value()
        return b is not None and t_site <= b - offset_c

    def flags(self, t_site, offset_c=1.0, below_c=2.0):
        """The baseline's flags for a reading, to pass to assess()."""
        out = []
        if self.above(t_site, offset_c):
            out.append("above_baseline")
        elif self.below(t_site, below_c):
            out.append("below_baseline")
        return out
