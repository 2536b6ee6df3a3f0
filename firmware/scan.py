"""The scan procedure: a stream of sensor samples in, one scan result out.

Pure logic on an injected clock (firmware/clock.py), so it runs in simulated time: the app reads the sensor at
its output rate and calls `feed()` once per sample; `feed()` returns None until the scan is over, then the
result dict (every field of the protocol-v1 scan record except v, site, node, seq).

Trigger: a button press, or (trigger "auto") the object rising above the sensor ambient by `margin_c`. After a
result in auto mode the target must leave (object below ambient + margin/2) before the next scan.

- forehead (handheld sweep, wide-FOV BAA/BCC): keeps a robust peak, the max of the 3-sample running median,
  so a single spike is ignored; ends after `sweep_ms` or when the target leaves.
- canthus (kiosk, 5 deg DCI held at the inner eye corner): waits for a stable plateau, predicted by fitting
  the sensor's first-order response to the last `plateau_ms` of samples (see `_fit`): done when the fit
  residual is within `plateau_c` and the plateau is known to `plateau_c / 2`, no earlier than half the
  settling time (DCI 0.65 s, datasheet 8.3). No plateau by `max_ms`: unstable (the target moves) or
  not_settled.

Flags found here: not_settled, unstable, low_supply, sensor_fault (any SensorError during the scan: the result
is invalid and carries no temperature). screening.assess() adds cold_ambient / hot_ambient / not_skin.
"""

import math

import mlx90614
import screening

IDLE = 0
SCANNING = 1
WAIT_LEAVE = 2
MIN_SETTLED = 3  # forehead: samples after twice the settling time before a sweep may end (one whole median)
SETTLED_C = 0.5  # forehead: a peak counts once a reading within this of it came after the settling time


class Button:
    """Debounced button: update(level, now) -> None, "short" (released before long_ms) or "long" (held)."""

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


class Scan:
    def __init__(self, clock, conf, boot=0, fw="", uptime=None):
        self.clock = clock
        self.boot = boot
        self.fw = fw
        self._uptime = uptime
        self._t_boot = clock.ticks_ms()
        self.state = IDLE
        self.last_seq = None  # type: int | None  # set by the app after the outbox append: what a retest links to
        self.faults = 0
        self._retest = False
        self._last_end = None
        self._last_verdict = None
        self.configure(conf)

    def configure(self, conf):
        """Apply new settings (a pushed config); an ongoing scan finishes under the old ones' buffers."""
        self.s = conf
        n = max(6, conf["plateau_ms"] // conf["sample_ms"])
        self._by = [0.0] * n  # canthus: the last n samples (C), their times since the trigger (ms), exp terms
        self._bt = [0] * n
        self._bx = [0.0] * n
        self._tau = conf["settle_ms"] / math.log(10)

    def arm_retest(self):
        """The next scan re-checks the previous one (button long-press)."""
        self._retest = self.last_seq is not None

    def feed(self, t_obj, t_amb, supply_v=None, fault=None, button=None):
        """One sample (C; None with `fault` = SensorError reason). Returns the result dict or None."""
        now = self.clock.ticks_ms()
        if button == "long":  # arms a retest; the scan itself starts as usual (target or a short press)
            self.arm_retest()
            button = None
        if fault is not None:
            self.faults += 1
        if self.state == WAIT_LEAVE:
            if button is None and (fault is not None or t_obj - t_amb >= self.s["margin_c"] / 2):
                return None
            self.state = IDLE
        if self.state == IDLE:
            auto = self.s["trigger"] == "auto" and fault is None and t_obj - t_amb >= self.s["margin_c"]
            if button is None and not auto:
                return None
            self._start(now, button is not None)
        return self._sample(now, t_obj, t_amb, supply_v, fault)

    def _start(self, now, by_button):
        self._t0 = now
        self._by_button = by_button
        self._n = 0
        self._last_t = None
        self._fault = None
        self._amb_sum = 0.0
        self._vdd = None
        self._peak = None
        self._late = None
        self._m1 = self._m2 = None
        self._sum = self._sq = 0.0
        self._k = 0
        self._drops = 0
        self._was_present = True
        s = self.s
        self._retest_of = None
        if self._retest or (
            s["auto_retest_s"] > 0
            and self._last_verdict in (screening.ELEVATED, screening.INDETERMINATE)
            and self.clock.ticks_diff(now, self._last_end) <= s["auto_retest_s"] * 1000
        ):
            self._retest_of = self.last_seq
        self._retest = False
        self.state = SCANNING  # last: a MemoryError above leaves the scan idle, not half started

    def _sample(self, now, t_obj, t_amb, supply_v, fault):
        s = self.s
        elapsed = self.clock.ticks_diff(now, self._t0)
        if fault is not None:
            self._fault = fault
            return self._finish(now, None, None)
        self._n += 1
        self._t = t_obj
        self._amb_sum += t_amb
        if supply_v is not None and (self._vdd is None or supply_v < self._vdd):
            self._vdd = supply_v
        present = t_obj - t_amb >= s["margin_c"] / 2
        if present:
            self._last_t = t_obj
        elif self._was_present:
            self._drops += 1
        self._was_present = present
        if not present and not self._by_button:  # the target left before the scan was complete
            if s["mode"] == "forehead" and self._settled():
                return self._forehead_end(now)
            return self._finish(now, self._peak if self._peak is not None else self._last_t, "not_settled")
        if s["mode"] == "forehead":
            return self._forehead(now, elapsed, t_obj)
        return self._canthus(now, elapsed, t_obj)

    def _forehead(self, now, elapsed, t):
        s = self.s
        m1, m2 = self._m1, self._m2
        med = None
        if m2 is not None:  # running median of 3: a single spike never becomes the peak
            med = max(min(m1, m2), min(max(m1, m2), t))
            if self._peak is None or med > self._peak:
                self._peak = med
        self._m1, self._m2 = t, m1
        if elapsed >= 2 * s["settle_ms"]:  # 99 % of a step (90 % at the settling time, first-order lag)
            if med is not None and (self._late is None or med > self._late):
                self._late = med
            self._k += 1
            self._sum += t
            self._sq += t * t
        if (elapsed < s["sweep_ms"] or self._k < MIN_SETTLED) and elapsed < s["max_ms"]:
            return None
        return self._forehead_end(now)

    def _settled(self):
        """The peak was held after the settling time (not a reading caught on the way up or down)."""
        if self._k < MIN_SETTLED or self._late is None or self._peak is None:
            return False
        return self._late >= self._peak - SETTLED_C

    def _forehead_end(self, now):
        s = self.s
        flag = None if self._settled() else "not_settled"
        if flag is None and self._k > 1:
            mean = self._sum / self._k
            if self._sq / self._k - mean * mean > s["unstable_c"] * s["unstable_c"] or self._drops > 1:
                flag = "unstable"
        return self._finish(now, self._peak if self._peak is not None else self._last_t, flag)

    def _canthus(self, now, elapsed, t):
        s = self.s
        n = len(self._by)
        i = self._n % n  # ring: sample j (from 1) lives at j % n
        self._by[i] = t
        self._bt[i] = elapsed
        late = elapsed >= s["max_ms"]
        if self._n < n or elapsed < s["settle_ms"] // 2:
            return self._finish(now, t, "not_settled") if late else None
        a, rms, se = self._fit(n)
        if a - self._amb_sum / self._n < s["margin_c"] / 2:  # heading for the ambient: the target is leaving
            return self._finish(now, self._last_t, "not_settled") if late or rms <= s["plateau_c"] else None
        if rms <= s["plateau_c"] and se <= s["plateau_c"] / 2:
            return self._finish(now, a, None)
        if not late:
            return None
        return self._finish(now, a, "unstable" if rms > s["plateau_c"] else "not_settled")

    def _fit(self, n):
        """Least squares of y = a + b * exp(-t / tau) over the ring: (plateau a, residual rms, std error of a).

        The sensor's IIR/FIR filter answers a step like a first-order lag (tau = settling time / ln 10: 90 % at
        the settling time), so the plateau is predicted before the reading gets there, as predictive clinical
        thermometers do. A moving target does not fit: large residuals -> unstable.
        """
        tau = self._tau
        xs, ys, ts = self._bx, self._by, self._bt
        sx = sy = 0.0
        for i in range(n):
            xs[i] = math.exp(-ts[i] / tau)
            sx += xs[i]
            sy += ys[i]
        mx = sx / n
        my = sy / n
        sxx = sxy = 0.0
        for i in range(n):
            dx = xs[i] - mx
            sxx += dx * dx
            sxy += dx * (ys[i] - my)
        b = sxy / sxx if sxx > 1e-12 else 0.0
        a = my - b * mx
        ss = 0.0
        for i in range(n):
            r = ys[i] - a - b * xs[i]
            ss += r * r
        rms = math.sqrt(ss / (n - 2))
        se = rms * math.sqrt(1 / n + (mx * mx / sxx if sxx > 1e-12 else 0.0))
        return a, rms, se

    def _finish(self, now, t_site, flag):
        s = self.s
        flags = []
        if flag is not None:
            flags.append(flag)
        if self._fault is not None:
            flags.append("sensor_fault")
        t_amb = self._amb_sum / self._n if self._n and self._fault is None else None
        if self._vdd is not None and self._fault is None:
            if self._vdd < s["low_supply_v"]:
                flags.append("low_supply")
            if t_site is not None:
                t_site = mlx90614.compensate_supply(t_site, self._vdd)
        if t_site is None and self._fault is None:
            t_site = self._t  # button scan never on a target: screening flags not_skin
        t_core, verdict, flags = screening.assess(s["cal"], s["mode"], t_site, t_amb, flags, s["threshold_c"])
        self.state = IDLE if self._by_button or s["trigger"] != "auto" else WAIT_LEAVE
        self._last_end = now
        self._last_verdict = verdict
        return {
            "boot": self.boot,
            "ts": self.clock.unix_ms(),
            "uptime_ms": self._uptime() if self._uptime else self.clock.ticks_diff(now, self._t_boot),
            "mode": s["mode"],
            "t_site_c": _r2(t_site),
            "t_amb_c": _r2(t_amb),
            "t_core_c": _r2(t_core),
            "verdict": verdict,
            "flags": flags,
            "samples": self._n,
            "duration_ms": self.clock.ticks_diff(now, self._t0),
            "retest_of": self._retest_of,
            "fw": self.fw,
            "cal": s["cal"]["id"],
        }


def _r2(x):
    return None if x is None else round(x, 2)
