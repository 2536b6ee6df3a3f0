"""The canthus strategy (kiosk, 5 deg DCI held at the inner eye corner): hold and fit the plateau.

The sensor's IIR/FIR filter answers a step like a first-order lag (tau = settling time / ln 10: 90 % at the
settling time, datasheet 8.3), so fitting y = a + b * exp(-t / tau) over the last `plateau_ms` of samples
predicts the plateau a before the reading gets there, as predictive clinical thermometers do. Done when the fit
residual is within `plateau_c` and a is known to `plateau_c / 2`, no earlier than half the settling time
(DCI 0.65 s). A moving target does not fit: no plateau by `max_ms` is unstable (large residuals) or
not_settled.
"""

import math


class Canthus:
    def __init__(self, conf):
        self.s = conf
        n = max(6, conf["plateau_ms"] // conf["sample_ms"])
        self._y = [0.0] * n  # ring: the last n samples (C), their times since the trigger (ms), exp terms
        self._t = [0] * n
        self._x = [0.0] * n
        self._tau = conf["settle_ms"] / math.log(10)
        self.peak = None  # no peak here: a target leaving ends the scan on its last reading

    def start(self):
        pass  # the ring is overwritten from sample 1; the fit waits until it is full

    def sample(self, scan, elapsed, t):
        """One reading `t` (C) at `elapsed` ms: None while holding, else (t_site, flag) to end the scan."""
        s = self.s
        n = len(self._y)
        i = scan.n % n  # ring: sample j (from 1) lives at j % n
        self._y[i] = t
        self._t[i] = elapsed
        late = elapsed >= s["max_ms"]
        if scan.n < n or elapsed < s["settle_ms"] // 2:
            return (t, "not_settled") if late else None
        a, rms, se = self.fit()
        if a - scan.amb_sum / scan.n < s["margin_c"] / 2:  # heading for the ambient: the target is leaving
            return (scan.last_t, "not_settled") if late or rms <= s["plateau_c"] else None
        if rms <= s["plateau_c"] and se <= s["plateau_c"] / 2:
            return a, None
        if not late:
            return None
        return a, "unstable" if rms > s["plateau_c"] else "not_settled"

    def left(self, scan):
        return scan.last_t, "not_settled"

    def fit(self):
        """Least squares of y = a + b * exp(-t / tau) over the ring: (plateau a, residual rms, std error of a)."""
        xs, ys, ts, n = self._x, self._y, self._t, len(self._y)
        sx = sy = 0.0
        for i in range(n):
            xs[i] = math.exp(-ts[i] / self._tau)
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
        return a, rms, rms * math.sqrt(1 / n + (mx * mx / sxx if sxx > 1e-12 else 0.0))
