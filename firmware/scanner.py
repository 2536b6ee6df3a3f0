"""The scan procedure: a stream of sensor samples in, one scan (the result dict) out.

On an injected clock (clock.py), so it runs in simulated time: the node calls `feed()` once per sensor sample;
it returns None until the scan is over, then the result (the scan message's fields but v, site, node, seq).
Trigger: a button press (button.py), or (trigger "auto") the object rising above the sensor ambient by
`margin_c`. After a result in auto mode the target must leave (object below ambient + margin/2) before the
next scan. A long press arms a retest: the next scan's `retest_of` is the last recorded seq. The reading is
the strategy's of the configured mode: forehead.py (sweep and peak) or canthus.py (hold and fit).
Flags found here: not_settled (the target left first), low_supply, sensor_fault (any SensorError during the
scan: the result is invalid and carries no temperature); the strategies add not_settled / unstable;
screening.assess() adds the condition flags, after the unit's reference correction (config `reference`) on the
site reading: t_site_c stays the unit's reading, ref_gain and ref_offset_c say what was applied. With a distance
sensor (`bus`, config sensor.distance) distance.py's gate adds too_far to a scan not taken inside the window.
"""

import canthus
import conditions
import distance
import forehead
import mlx90614
import reference
import screening
from contract import MODES, VERDICTS

IDLE = 0
SCANNING = 1
WAIT_LEAVE = 2
_RETEST_VERDICTS = VERDICTS[1:3]  # elevated, indeterminate: auto_retest_s links the next scan to them
_WAYS = {MODES[0]: forehead.Forehead, MODES[1]: canthus.Canthus}


class Scanner:
    def __init__(self, clock, conf, boot=0, fw="", uptime=None, bus=None, unit=None):
        self.clock = clock
        self.boot, self.unit, self.fw = boot, unit, fw  # unit: health.unit_id, in every scan
        self._uptime = uptime
        self._t_boot = clock.ticks_ms()
        self.state = IDLE
        self._last_seq = None  # the node sets last_seq after the outbox append: what a retest links to
        self.codes = conditions.Codes(conf["node"]) if "node" in conf else None  # retest codes of cases
        self.ambient = conditions.AmbientWatch()
        self._retest_code = None
        self.faults = 0
        self._retest = False
        self._last_end = None
        self.last_verdict = None
        self._next = None
        self.gate = distance.make(bus, conf.get("window_mm"))  # NO_GATE without a distance sensor
        self.configure(conf)

    def configure(self, conf):
        """Apply new settings (a pushed config) now, or after the scan under way, which ends under the old."""
        if self.state == SCANNING:
            self._next = conf
        else:
            self._apply(conf)

    def _apply(self, conf):
        self.s = conf
        self._next = None
        self._way = _WAYS[conf["mode"]](conf)
        self.gate.configure(conf.get("window_mm"))

    def current(self, seq, window_ms):
        """True while `seq` is the last scan and its traveller the one in front: no scan started since its
        result, at most `window_ms` ago (a gateway verdict for it may be shown)."""
        if seq != self.last_seq or self.state == SCANNING or self._last_end is None:
            return False
        return self.clock.ticks_diff(self.clock.ticks_ms(), self._last_end) <= window_ms

    @property
    def last_seq(self):
        return self._last_seq

    @last_seq.setter
    def last_seq(self, seq):
        """The node stored the last result under `seq`: its case (if any) now knows its scan."""
        self._last_seq = seq
        if self.codes is not None and seq is not None:
            self.codes.recorded(seq)

    def arm_retest(self, code=None):
        """The next scan re-checks a case: the one with `code` (entered by staff, from any node of the site), else
        the node's oldest pending case, else the previous scan (button long-press)."""
        self._retest_code = code
        self._retest = code is not None or self.last_seq is not None

    def feed(self, t_obj, t_amb, supply_v=None, fault=None, button=None):
        """One sample (C; None with `fault` = SensorError reason); `button`: an event of button.py.
        Returns the result dict or None."""
        now = self.clock.ticks_ms()
        self.gate.poll()
        if button == "long":  # arms a retest; the scan itself starts as usual (target or a short press)
            self.arm_retest()
            button = None
        if fault is not None:
            self.faults += 1
        else:
            self.ambient.feed(now, t_amb, self.clock.ticks_diff)
        margin = self.s["margin_c"]
        if self.state == WAIT_LEAVE:
            if button is None and (fault is not None or t_obj - t_amb >= margin / 2):
                return None
            self.state = IDLE
        if self.state == IDLE:
            auto = self.s["trigger"] == "auto" and fault is None and t_obj - t_amb >= margin
            if button is None and not auto:
                return None
            self._start(now, button is not None)
        return self._sample(now, t_obj, t_amb, supply_v, fault)

    def _start(self, now, by_button):
        self._t0 = now
        self._by_button = by_button
        self.n = 0
        self.last_t = None  # the last reading on the target
        self.amb_sum = 0.0
        self.drops = 0  # times the target left the field of view
        self._t = None
        self._fault = None
        self._vdd = None
        self._present = True
        self._way.start()
        self.gate.start()
        retest = self._retest or self._auto_retest(now)
        self._retest_of = self.last_seq if retest else None
        codes = self.codes
        self._retest_code = codes.retested(self._retest_code) if retest and codes is not None else None
        if self._retest_code is not None and codes is not None:  # its scan here, or none (another node's case)
            self._retest_of = codes.seq_of(self._retest_code)
        self._retest = False
        self.state = SCANNING  # last: a MemoryError above leaves the scan idle, not half started

    def _auto_retest(self, now):
        s = self.s
        if s["auto_retest_s"] <= 0 or self.last_verdict not in _RETEST_VERDICTS:
            return False
        return self.clock.ticks_diff(now, self._last_end) <= s["auto_retest_s"] * 1000

    def _sample(self, now, t_obj, t_amb, supply_v, fault):
        if fault is not None:
            self._fault = fault
            return self._finish(now, None, None)
        self.n += 1
        self._t = t_obj
        self.amb_sum += t_amb
        if supply_v is not None and (self._vdd is None or supply_v < self._vdd):
            self._vdd = supply_v
        present = t_obj - t_amb >= self.s["margin_c"] / 2
        if present:
            self.last_t = t_obj
        elif self._present:
            self.drops += 1
        self._present = present
        if not present and not self._by_button:  # the target left before the scan was complete
            return self._finish(now, *self._way.left(self))
        end = self._way.sample(self, self.clock.ticks_diff(now, self._t0), t_obj)
        return None if end is None else self._finish(now, *end)

    def _finish(self, now, t_site, flag):
        s = self.s
        flags = [f for f in (flag, self.gate.flag()) if f is not None]
        if self.ambient.unsettled(self.clock.ticks_diff):
            flags.append("sensor_unsettled")
        t_amb, t_site = self._correct(t_site, flags)
        t_amb, t_site = _r2(t_amb), _r2(t_site)  # decided on the values published, as the gateway does
        t_true = reference.correct(s.get("ref"), t_site)  # the unit's reference correction, as the gateway's
        t_core, verdict, flags = screening.assess(s["cal"], s["mode"], t_true, t_amb, flags, s["threshold_c"])
        self.state = IDLE if self._by_button or s["trigger"] != "auto" else WAIT_LEAVE
        self._last_end = now
        self.last_verdict = verdict
        result = self._result(now, t_site, t_amb, t_core, verdict, flags)
        if self._next is not None:
            self._apply(self._next)
        return result

    def _correct(self, t_site, flags):
        """(mean ambient, site reading corrected for the supply) and the sensor's flags added to `flags`."""
        if self._fault is not None:
            flags.append("sensor_fault")
            return None, t_site
        t_amb = self.amb_sum / self.n if self.n else None
        if self._vdd is not None:
            if self._vdd < self.s["low_supply_v"]:
                flags.append("low_supply")
            if t_site is not None:
                t_site = mlx90614.compensate_supply(t_site, self._vdd)
        if t_site is None:
            t_site = self._t  # button scan never on a target: screening flags not_skin
        return t_amb, t_site

    def _result(self, now, t_site, t_amb, t_core, verdict, flags):
        s = self.s
        ref = s.get("ref") or {}
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
            "samples": self.n,
            "duration_ms": self.clock.ticks_diff(now, self._t0),
            "retest_of": self._retest_of,
            "code": None if self.codes is None else self.codes.case(self._retest_code, verdict),
            "retest_code": self._retest_code,
            "wait_s": conditions.wait_s(flags, self.ambient, s["cal"]["ambient_c"][0], self.clock.ticks_diff),
            "ref_gain": ref.get("gain"),  # t_site_c is the unit's reading: the gateway corrects it with these
            "ref_offset_c": ref.get("offset_c"),
            "unit": self.unit,
            "fw": self.fw,
            "cal": s["cal"]["id"],
        }


def _r2(x):
    return None if x is None else round(x, 2)
