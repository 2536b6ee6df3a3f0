"""Whose conditions fail a reading, what staff do about it, and the retest codes that find the traveller again.

Two kinds of "indeterminate" that staff must not confuse (docs/screening.md, "The cold post"):
- the scanner: its sensor is outside the calibration's ambient range (cold_ambient, hot_ambient) or not
  isothermal (sensor_unsettled: its ambient changed faster than RATE_C_MIN over the last minute; the MLX90614
  datasheet's accuracy holds only with the sensor in thermal equilibrium). The fix is the scanner's: warm it,
  wait; retesting the traveller sooner cannot help.
- the traveller: skin not at equilibrium (cold_skin, below_baseline): retest after RETEST_MIN minutes inside.

`AmbientWatch` follows the sensor's ambient (a smoothed point every 5 s, the last minute kept): its rate and
how long until the scanner is usable (a first-order fit of the last minute; None when it settles outside the
range: it must be moved somewhere warmer). `Codes` hands out three-digit retest codes: the node's slot (the
last digit of its name) then a counter of cases, so two nodes of a site never give the same code until one of
them has opened 100 cases. The counter needs no file of its own: at boot it starts from the outbox's next seq
(persisted; a node opens at most one case per scan), so it never goes back. The pending cases (indeterminate)
are kept for a retest without a code.
"""

import math

SCANNER = "scanner"
TRAVELLER = "traveller"
SCANNER_FLAGS = ("cold_ambient", "hot_ambient", "sensor_unsettled")
TRAVELLER_FLAGS = ("cold_skin", "below_baseline")
RATE_C_MIN = 0.3  # C per minute: faster is not isothermal (assumed; docs/screening.md, "The cold post")
MIN_SPAN_MS = 10000  # the rate is judged over at least this long
POINT_MS = 5000
POINTS = 13  # one minute of points
RETEST_MIN = 10  # minutes inside before a cold traveller's retest (Dzien 2021: docs/screening.md)
MAX_WAIT_S = 3600
PENDING_MAX = 20


def whose(flags):
    """SCANNER, TRAVELLER or None: whose conditions made this reading indeterminate (the scanner first)."""
    for f in SCANNER_FLAGS:
        if f in flags:
            return SCANNER
    for f in TRAVELLER_FLAGS:
        if f in flags:
            return TRAVELLER
    return None


def wait_s(flags, watch, lo, diff):
    """Before a retest helps: the scanner's settling (None: never, where it is) or the traveller's warming."""
    who = whose(flags)
    if who == SCANNER:
        return watch.wait_s(lo, diff)
    return RETEST_MIN * 60 if who == TRAVELLER else None


class AmbientWatch:
    def __init__(self, span_ms=MIN_SPAN_MS):
        self.points = []  # (ticks_ms, smoothed ambient C), oldest first
        self.span_ms = span_ms
        self._ema = None
        self._t0 = None

    def feed(self, now, t_amb, diff):
        """One sensor ambient sample at `now` (ticks ms; `diff` is the clock's ticks_diff)."""
        self._ema = t_amb if self._ema is None else self._ema + (t_amb - self._ema) * 0.2
        if self._t0 is None:
            self._t0 = now
        if not self.points or diff(now, self.points[-1][0]) >= POINT_MS:
            self.points.append((now, self._ema))
            if len(self.points) > POINTS:
                self.points.pop(0)

    def rate(self, diff):
        """C per minute over the kept points; None before MIN_SPAN_MS of them."""
        p = self.points
        if len(p) < 2 or diff(p[-1][0], p[0][0]) < self.span_ms:
            return None
        return (p[-1][1] - p[0][1]) * 60000 / diff(p[-1][0], p[0][0])

    def unsettled(self, diff):
        """Changing faster than RATE_C_MIN (the first MIN_SPAN_MS after power-up are not judged: no history)."""
        r = self.rate(diff)
        return r is not None and abs(r) > RATE_C_MIN

    def wait_s(self, lo, diff):
        """Seconds until the scanner is usable: rate under RATE_C_MIN and ambient at or above `lo` (a first-order
        approach fitted on the two halves of the last minute); None: it will not get there where it is."""
        p = self.points
        r = self.rate(diff)
        if r is None:
            return MIN_SPAN_MS // 1000 if not p else max(1, (self.span_ms - diff(p[-1][0], p[0][0])) // 1000)
        mid = len(p) // 2
        r1 = (p[mid][1] - p[0][1]) * 60000 / max(1, diff(p[mid][0], p[0][0]))
        r2 = (p[-1][1] - p[mid][1]) * 60000 / max(1, diff(p[-1][0], p[mid][0]))
        now_c = p[-1][1]
        if r1 * r2 <= 0 or abs(r2) >= abs(r1):  # not a settling approach: ask again in a minute
            return 60 if now_c >= lo or r > 0 else None
        tau_min = (diff(p[-1][0], p[0][0]) / 120000) / math.log(r1 / r2)
        final_c = now_c + r2 * tau_min
        if final_c < lo:
            return None
        t = tau_min * math.log(abs(r2) / RATE_C_MIN) if abs(r2) > RATE_C_MIN else 0.0
        if now_c < lo:
            t = max(t, tau_min * math.log((final_c - now_c) / max(0.01, final_c - lo)))
        return min(MAX_WAIT_S, int(t * 60) + 1)


def slot_of(node):
    """The last digit of the node's name (bridge-north-2: 2), 0 without one: the first digit of its codes."""
    for i in range(len(node) - 1, -1, -1):  # (MicroPython has no reversed slices)
        if "0" <= node[i] <= "9":
            return ord(node[i]) - 48
    return 0


class Codes:
    """Retest codes of one node: slot * 100 + a counter of cases (module doc)."""

    def __init__(self, node):
        self.slot = slot_of(node)
        self.n = None  # seeded by the first seq the node reports (`recorded`)
        # Indeterminate cases still pending, oldest first: codes and seqs in lists allocated once (small ints
        # live in the pointer on MicroPython), so a node that retests nobody keeps its heap.
        self.pending = 0
        self._codes = [0] * PENDING_MAX
        self._seqs = [0] * PENDING_MAX
        self._case = None  # (code, still pending) of the last result, until the node records it

    def new(self):
        self.n = (self.n or 0) + 1
        return self.slot * 100 + self.n % 100

    def retested(self, entered):
        """The code a retest names: the one entered, else the oldest pending case (a node without a display)."""
        if entered is None and self.pending:
            entered = self._codes[0]
            print("codes: retest linked to the oldest pending case", entered)
        return entered

    def case(self, retested, verdict):
        """The code of a result: the case retested, else a new one for an elevated or indeterminate result."""
        code = retested
        if code is None and verdict in ("elevated", "indeterminate"):
            code = self.new()
        self._case = None if code is None else (code, verdict == "indeterminate")
        return code

    def recorded(self, seq):
        """The node stored the last result under `seq` (at boot: the last seq on flash): its case stays pending
        or is closed."""
        if self.n is None:
            self.n = seq + 1
        if self._case is not None:
            self.close(self._case[0], seq, self._case[1])
        self._case = None

    def seq_of(self, code):
        for i in range(self.pending):
            if self._codes[i] == code:
                return self._seqs[i]
        return None

    def close(self, code, seq, still_pending):
        """A case's latest scan: kept pending (its seq updated) while indeterminate, else closed."""
        codes, seqs, n = self._codes, self._seqs, 0
        for i in range(self.pending):  # drop `code`, keeping the order
            if codes[i] != code:
                codes[n], seqs[n] = codes[i], seqs[i]
                n += 1
        if still_pending and code is not None:
            if n == PENDING_MAX:  # full: the oldest case gives way
                for i in range(1, n):
                    codes[i - 1], seqs[i - 1] = codes[i], seqs[i]
                n -= 1
            codes[n], seqs[n] = code, seq
            n += 1
        self.pending = n
