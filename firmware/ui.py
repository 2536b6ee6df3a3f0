"""Staff feedback: green / amber / red LEDs, a buzzer, a link LED and an optional SSD1306 line.

`show(name)` sets the pins at once (synchronously: a verdict is visible the moment the result exists, before
any publishing); `tick()`, called every ~20 ms by the app's ui task, plays the rest of the pattern on the
injected clock. Pins are any objects with `value(v)` (machine.Pin on the ESP32; recorded pins on the host).
Only changes are written. The table below is the one in docs/firmware.md.

    pattern        LEDs                              buzzer                   meaning
    scanning       amber steady                      -                        hold still
    normal         green 2 s                         1 short beep             pass
    elevated       red 5 s                           3 long beeps             call the medic
    indeterminate  amber blinking 3 s                2 short beeps            retest (the traveller: cold skin...)
    scanner        amber 0.4 s, then 1 s twice       1 long beep              indeterminate: the scanner is not ready
    invalid        red + amber fast blink 3 s        1 long beep              sensor fault: no reading
    agrees         red steady 5 s                    -                        the gateway's screen also reads elevated
    late           green + amber 3 slow blinks       -                        a gateway verdict for an earlier scan
    retest         amber 2 quick blinks              1 short beep             next scan is a retest
    fault          red + amber slow blink (repeats)  -                        sensor not answering
    repower        amber, then red + amber, 1 s each (repeats)  -             not screening: cycle the power
    safe           red blinks N times, pause (rep.)  -                        safe mode, code N
    link LED       on: broker connected; slow blink: Wi-Fi only; fast blink: broker certificate refused;
                   off: no Wi-Fi (set_link: linkstate.py events)
"""

import conditions
from linkstate import DOWN, REFUSED, UP, WIFI

_BLINK = {WIFI: 500, REFUSED: 100}  # link LED half-periods, ms: Wi-Fi only; broker refused (certificate)

G = 1
A = 2
R = 4
BUZ = 8


def _p(*steps):
    """A pattern as bytes (they cost a fraction of a tuple's heap): per step, duration in 20 ms units and
    LED mask | BUZ. After the last step: all off, or start again for the patterns in REPEAT."""
    out = bytearray()
    for ms, bits in steps:
        out.append(ms // 20)
        out.append(bits)
    return bytes(out)


PATTERNS = {
    "scanning": _p((5000, A)),
    "normal": _p((80, G | BUZ), (1920, G)),
    "elevated": _p((300, R | BUZ), (160, R), (300, R | BUZ), (160, R), (300, R | BUZ), (3780, R)),
    "indeterminate": _p((80, A | BUZ), (80, A), (80, A | BUZ), (260, 0), *(((240, A), (260, 0)) * 5)),
    "invalid": _p((800, R | A | BUZ), *(((100, 0), (100, R | A)) * 11)),
    "agrees": _p((5000, R)),
    "late": _p(*(((300, G | A), (300, 0)) * 3)),
    "retest": _p((80, A | BUZ), (120, 0), (80, A), (120, 0)),
    "scanner": _p((400, A | BUZ), (200, 0), (1000, A), (400, 0), (1000, A)),
    "fault": _p((500, R | A), (500, 0)),
    "repower": _p((1000, A), (1000, R | A)),
}
REPEAT = ("scanning", "fault", "repower", "safe")


def reason_lines(who, result, wait_s, code):
    """The display's lines 2-4 (16 characters each) for a case: reason, action, code."""
    flags = result.get("flags", ())
    if who == conditions.SCANNER:
        why = "COLD" if "cold_ambient" in flags else "HOT" if "hot_ambient" in flags else "SETTLING"
        text = "\nSCANNER " + why + "\n" + ("move it warmer" if wait_s is None else "wait %d s" % wait_s)
    elif who == conditions.TRAVELLER:
        text = "\nCOLD SKIN\nretest %d min in" % ((wait_s or 600) // 60)
    else:
        text = "\nmedic: thermometer" if result["verdict"] == "elevated" else ""
    return text + ("" if code is None else "\ncode %03d" % code)


def safe_pattern(code):
    """Blink code for safe mode: `code` red blinks, then a pause."""
    return _p(*(((200, R), (300, 0)) * code + ((1500, 0),)))


class UI:
    def __init__(self, clock, pins, display=None):
        """pins: dict with "green", "amber", "red", "buzzer", "link" (each optional)."""
        self.clock = clock
        self._pins = pins
        self._written = {}
        self.display = display
        self.state = "idle"
        self.link = DOWN
        self._steps = b""
        self._i = 0
        self._t = clock.ticks_ms()
        self._link_t = self._t

    def _set(self, name, v):
        p = self._pins.get(name)
        if p is not None and self._written.get(name) != v:
            self._written[name] = v
            p.value(v)

    def _apply(self, bits):
        self._set("green", 1 if bits & G else 0)
        self._set("amber", 1 if bits & A else 0)
        self._set("red", 1 if bits & R else 0)
        self._set("buzzer", 1 if bits & BUZ else 0)

    def show(self, name, line=None, steps=None):
        """Start a pattern now (LEDs and buzzer set before returning); `line` goes to the display if any."""
        self.state = name
        self._steps = steps if steps is not None else PATTERNS[name]
        self._i = 0
        self._t = self.clock.ticks_ms()
        self._apply(0)  # every pattern starts from dark: a result after one of its colour is still an LED edge
        self._apply(self._steps[1])
        if line is not None and self.display is not None:
            self.text(line)

    def show_result(self, result):
        """The verdict of one scan, with its core estimate on the display; a case adds whose conditions failed,
        what to do and its retest code (docs/firmware.md, "What staff see and hear")."""
        t = result["t_core_c"]
        line = ("%.1fC " % t if t is not None else "--.-C ") + result["verdict"]
        who = conditions.whose(result.get("flags", ())) if result["verdict"] == "indeterminate" else None
        line += reason_lines(who, result, result.get("wait_s"), result.get("code"))
        self.show("scanner" if who == conditions.SCANNER else result["verdict"], line)

    def keep(self, name, line=None):
        """Show a repeating pattern unless it is showing already, and play it on."""
        if self.state != name:
            self.show(name, line)
        self.tick()

    def safe_mode(self, code):
        self.show("safe", None, safe_pattern(code))

    def idle(self):
        self.state = "idle"
        self._steps = b""
        self._apply(0)

    def set_link(self, state):
        """The link state changed (linkstate.DOWN, WIFI, UP): the link LED follows."""
        self.link = state
        self._set("link", 1 if state == UP else 0)

    def tick(self):
        now = self.clock.ticks_ms()
        if self.link in _BLINK and self.clock.ticks_diff(now, self._link_t) >= _BLINK[self.link]:
            self._link_t = now
            self._set("link", 0 if self._written.get("link") else 1)
        if not self._steps:
            return
        steps = self._steps
        while self.clock.ticks_diff(now, self._t) >= steps[self._i] * 20:
            self._t += steps[self._i] * 20
            self._i += 2
            if self._i >= len(steps):
                if self.state in REPEAT:
                    self._i = 0
                else:
                    self.idle()
                    return
        self._apply(steps[self._i + 1])

    def text(self, line):
        """`line` on the display, if any (up to 4 lines of 16 characters, split at newlines)."""
        d = self.display
        if d is None:
            return
        try:
            d.fill(0)
            for i, part in enumerate(line.split("\n")[:4]):
                d.text(part, 0, 8 * i)
            d.show()
        except OSError as e:  # the display shares the bus; a display fault must not stop scanning
            print("ui: display error", e)
