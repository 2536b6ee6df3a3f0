"""One simulated node at a checkpoint post: the real firmware under CPython on simulated hardware, and its lane.

Each node has its own simulated MLX90614 (BCC for a handheld forehead scanner, DCI for a canthus kiosk) behind
sim/'s machine.I2C, recorded pins, a Wi-Fi link that faults can cut, a filesystem folder (config.json,
boot counter, outbox) and a real MQTT connection through the firmware's own client. Travellers arrive at the
lane (Poisson), step in front of the sensor, stay until the node shows a verdict, and step away; every scan
the node records is reported to the simulator with the traveller it belongs to (ground truth), through the
firmware's own observer hook (`Node.observers`).

The cold post (issue 14): the scanner's package follows its housing (sim/thermal.py) and its gradient error is
on the object reading; vehicle occupants or travellers on foot (sim/travellers.py); ground truth per scan says
whether the reading was taken outside the calibration's conditions. A traveller whose result is indeterminate
comes back to the same node after the wait the node gave (the scanner's) or one drawn from the scenario (their
own: minutes inside), with the case's code entered, until the lanes close.

Same seed, same travellers, same scans: arrivals are drawn up front (every one before the end is served, late
or not), every visit draws its scene from a generator of its own (seed, node, traveller, visit), and the chip
is noise-free (the scan noise is the traveller's, drawn per visit), so what a scan reads does not depend on how
many samples real-time scheduling gave the node before it. On virtual time (sim/vloop.py, a VirtualClock and the
stubs on the loop) the samples themselves fall at the same moments in every run: one seed, one set of scans.

Faults act on this node: Wi-Fi cut, sensor error flag or bus noise, power cut (tasks stopped abruptly, the
connection dropped without DISCONNECT by `Uplink.drop()`, sometimes a torn record left at the end of the
outbox), garbage published under its identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import firmware
from sim import thermal
from sim.clock import NodeClock, ScaledClock
from sim.host.board import DEFAULT_UNIX_MS, HostBoard
from sim.host.udp import HUB, DnsStub, Hub, NtpStub
from sim.lane import Lane
from sim.mlx90614 import MLX90614
from sim.scenario import Scenario, Site
from sim.travellers import Population, Scene, Traveller, deficit_c, settled_at_c, site_temperature

conditions: Any = firmware.module("conditions")  # untyped MicroPython module
reference: Any = firmware.module("reference")
CAL: Any = firmware.module("calibration").CALIBRATION
TOLERANCE_C = 0.5  # a face further below its equilibrium than this is outside the calibration's conditions
MAX_VISITS = 3

VARIANT = {"forehead": "BCC", "canthus": "DCI"}
BROKER_NAME = "broker.checkpoint.sim"  # resolved by the node's own DNS client against its DnsStub
Y2101_MS = 4_133_980_800_000
DWELL_MS = 400  # a traveller stays this long after the verdict is shown
GIVE_UP_MS = 4000  # no verdict by then (sensor fault): the traveller moves on unscanned
GAP_MS = 800  # the next traveller steps up

# Which node owns the task being created: tasks spawned inside a node's run() inherit this, so a power cut can
# stop every task of that node without the firmware having to expose them.
_OWNER: contextvars.ContextVar[SimNode | None] = contextvars.ContextVar("sim_node_owner", default=None)


def install_task_tracking(loop: asyncio.AbstractEventLoop) -> None:
    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        owner = _OWNER.get()
        if owner is not None:
            owner.tasks.add(task)
            task.add_done_callback(owner.tasks.discard)
        return task

    loop.set_task_factory(factory)


@dataclass
class RecordedScan:
    """One scan the node recorded (appended to its outbox), as the simulator saw it happen."""

    site: str
    node: str
    seq: int | None  # None: the outbox append failed (the node said so)
    verdict: str
    t_site_c: float | None
    flags: list[str]
    traveller: Traveller | None
    at: float  # time.monotonic() when the node recorded it
    outside: bool = False  # ground truth: taken outside the calibration's conditions (scanner or traveller)
    visit: int = 0  # 0: the traveller's first scan, 1..: retests
    code: int | None = None
    retest_code: int | None = None


@dataclass(frozen=True)
class Uplink:
    """Where a node's MQTT goes: one broker's port, or the MQTT ports of a cluster's members (the node starts on
    the first and moves on, firmware session.py), with the account the members ask for."""

    port: int
    members: tuple[int, ...] = ()
    auth: tuple[str, str] | None = None

    def broker(self) -> dict[str, Any]:
        """The node config's `broker` section (the members by the broker's name, resolved by the node's DNS)."""
        b: dict[str, Any] = {"host": BROKER_NAME, "port": self.port, "keepalive_s": 30}
        if self.members:
            b["hosts"] = [f"{BROKER_NAME}:{p}" for p in self.members]
        if self.auth is not None:
            b["user"], b["password"] = self.auth
        return b


def unit_error(site: Site, seed: int) -> tuple[float, float]:
    """A node's part's (gain, offset_c): exact unless the site gives a spread; drawn from the node's seed, cut at
    3 sd (inside what firmware/reference.py takes for an honest sensor)."""
    rng = random.Random(seed * 7919 + 1)

    def draw(sd: float) -> float:
        return max(-3 * sd, min(3 * sd, rng.gauss(0.0, sd)))

    return 1.0 + draw(site.unit_gain_sd), draw(site.unit_offset_sd_c)


def shift_check(gain: float, offset_c: float) -> dict[str, float]:
    """The correction staff get from the two-point check at shift start: the unit's readings (0.01 C, as its
    scans show them) of the two reference temperatures, through firmware/reference.py."""
    (lo, hi) = reference.REFERENCE_C
    read = [round(gain * t + offset_c, 2) for t in (lo, hi)]
    return dict(reference.two_point(lo, read[0], hi, read[1]))


def node_config(site: Site, node: str, uplink: Uplink, ref: dict[str, float] | None = None) -> dict[str, Any]:
    """The node's config.json; `ref`: the unit's reference correction (`reference` key) when it was checked."""
    cfg = {
        "site": site.name,
        "node": node,
        "config_id": "sim-1",
        "mode": site.mode,
        "wifi": {"ssid": "checkpoint", "password": "simulated"},
        "broker": uplink.broker(),
        "sensor": {"variant": VARIANT[site.mode]},
    }
    if ref is not None:
        cfg["reference"] = ref
    return cfg


class SimNode:
    def __init__(
        self,
        scenario: Scenario,
        site: Site,
        name: str,
        uplink: Uplink | int,
        root: Path,
        on_scan: Callable[[RecordedScan], None],
        seed: int,
        clock: NodeClock | None = None,  # default: scaled by the scenario's speed; virtual time: a VirtualClock
        hub: Hub = HUB,  # what serves its NTP and DNS stubs (virtual time: the event loop, sim/host/udp.py)
    ) -> None:
        self.site, self.name, self.scenario = site, name, scenario
        self.root = root
        self.uplink = uplink if isinstance(uplink, Uplink) else Uplink(uplink)  # an int: one broker's port
        self.clock: NodeClock = clock if clock is not None else ScaledClock(scenario.speed)
        gain, offset_c = unit_error(site, seed)
        self.chip = MLX90614(self.clock, variant=VARIANT[site.mode], seed=seed, noise=False, gain=gain,
                             offset_c=offset_c)  # fmt: skip
        self.ref = shift_check(gain, offset_c) if site.reference_check else None
        self.housing = thermal.Housing(site.scanner, site.housing_c, site.scanner_start_c, site.scanner_tau_s)
        self.front: Lane[Traveller] = Lane(self.chip, self._package_c(0.0), DWELL_MS, GAP_MS, GIVE_UP_MS)
        self.front.set_air(self._package_c(0.0), site.ambient_c, self.housing.error_c(0.0, site.ambient_c))
        # the node's own draws, and each unit's identity (the firmware's health.unit_id: one seed, one run)
        self.rng, self.units = random.Random(seed), random.Random(seed ^ 0x756E6974)
        self.seed = seed
        cold = site.cold_share if site.cold_share is not None else (0.7 if site.indoor else 0.0)
        outdoor = site.outdoor()
        self.population = Population(
            seed, scenario.fever_prevalence, cold_share=cold, cold_ambient_c=(outdoor - 3, outdoor + 3),
            minutes_since_cold=site.minutes_inside, cabin_c=site.cabin_c if site.arrival == "vehicle" else None,
            window_s=site.window_s,
        )  # fmt: skip
        self.returns: list[tuple[float, int, Traveller, int, float | None, int | None]] = []  # a heap: retests
        self._visit: tuple[float, int, float | None] = (0.0, 0, None)  # (arrival s, visit, minutes inside)
        self._truth = False
        self.on_scan = on_scan
        self.tasks: set[asyncio.Task[Any]] = set()
        self.board: HostBoard | None = None
        self.firmware: Any = None
        self.shown = asyncio.Event()
        self.travellers = 0
        self.febrile = 0
        self.boots = 0
        self.powered = False
        self.wifi_up = True
        self.ntp = NtpStub(lambda: DEFAULT_UNIX_MS + self.clock.ticks_ms(), hub)  # the node's NTP and DNS servers
        self.dns = DnsStub(hub=hub)

    # --- power
    def power_on(self) -> None:
        """Boot the firmware from its folder (config.json, boot counter, outbox survive a power cut)."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "config.json").write_text(json.dumps(node_config(self.site, self.name, self.uplink, self.ref)))
        board = HostBoard(self.clock, str(self.root), {0x5A: self.chip}, urandom=self.units.randbytes)
        board.link.attach(self.ntp, self.dns)
        if not self.wifi_up:
            board.link.cut()
        cfg, settings, reason = firmware.module("app").boot_config(board.root)
        if cfg is None:
            raise RuntimeError(f"{self.name}: the simulator wrote an invalid node config: {reason}")
        node = firmware.module("node").Node(board, cfg, settings)
        node.observers.append(self._recorded)  # every scan the node records, with the traveller in front of it
        self.board, self.firmware = board, node
        self.boots += 1
        self.powered = True
        token = _OWNER.set(self)
        try:
            asyncio.get_running_loop().create_task(node.run(), name=f"{self.name}-run")
        finally:
            _OWNER.reset(token)

    def power_cut(self, torn: bool) -> None:
        """Power gone: every task stops where it is, the TCP connection drops (the broker sends the will).

        With `torn`, a record was being written: a partial record is left at the end of the newest outbox
        segment, which the firmware must detect and skip at the next boot."""
        uplink = getattr(self.firmware, "uplink", None)
        if uplink is not None:
            uplink.drop()
        for task in list(self.tasks):
            task.cancel()
        self.tasks.clear()
        outbox = getattr(self.firmware, "outbox", None)
        if outbox is not None:
            outbox.close()
        if torn and outbox is not None:
            self._tear(int(outbox.next_seq))
        self.powered = False
        if not self.front.empty:
            self.front.step_out(self.clock.ticks_ms())  # the screen went dark: the traveller is waved on
            self.shown.set()

    def _tear(self, next_seq: int) -> None:
        """A record was half written when the power went: its first bytes end the newest segment (or start a
        new one, named by the seq it would have had; see firmware/outbox.py for the layout)."""
        folder = self.root / "outbox"
        segments = sorted(folder.glob("*.seg"))
        path = segments[-1] if segments else folder / f"{next_seq:08x}.seg"
        with open(path, "ab") as f:
            f.write(bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 30))))

    # --- faults
    def wifi(self, up: bool) -> None:
        self.wifi_up = up
        if self.board is not None:
            if up:
                self.board.link.restore()
            else:
                self.board.link.cut()

    def net_fault(self, kind: str, on: bool) -> None:
        """A fault of sim.scenario.NET_FAULTS on (or off again)."""
        if kind == "clock_jump":
            self.ntp.offset_ms = Y2101_MS - self.ntp.unix_ms() if on else 0
        elif kind == "ntp_bad_reply":
            self.ntp.reply = "kod" if on else "ok"
        elif kind == "dns_slow":
            self.dns.delay_s = 5.0 / self.clock.speed if on else 0.0
        uplink = getattr(self.firmware, "uplink", None)
        if uplink is None:
            return
        if kind in ("clock_jump", "ntp_bad_reply") and on:
            uplink.timesync.soon()  # the node asks now, not within the hour
        elif kind == "receipt_loss":
            self._lose_receipts(uplink.downlink, on)

    def _lose_receipts(self, downlink: Any, on: bool) -> None:
        """Every other receipt for this node never reaches it (the radio lost it): it must resend, in time."""
        if not on:
            vars(downlink).pop("on_message", None)
            return
        deliver = downlink.on_message
        receipts = itertools.count()

        def lossy(topic: str, payload: bytes, retained: bool) -> None:
            if not topic.endswith("/receipt") or next(receipts) % 2:
                deliver(topic, payload, retained)

        downlink.on_message = lossy

    def sensor_fault(self, kind: str, on: bool) -> None:
        if on:
            self.chip.inject(kind, p=0.3) if kind == "bus_noise" else self.chip.inject(kind)
        else:
            self.chip.clear(kind)

    # --- state the simulator reads
    @property
    def depth(self) -> int:
        """Records not yet receipted by the gateway."""
        outbox = getattr(self.firmware, "outbox", None)
        return int(outbox.depth) if outbox is not None and self.powered else 0

    @property
    def connected(self) -> bool:
        uplink = getattr(self.firmware, "uplink", None)
        return bool(uplink is not None and uplink.connected)

    async def stop(self) -> None:
        """Clean shutdown: the uplink publishes "offline" and disconnects; then the tasks stop."""
        uplink = getattr(self.firmware, "uplink", None)
        if uplink is not None and self.powered:
            # The link may be down: then the broker's will says offline instead.
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(uplink.stop(), 5)
        self.power_cut(torn=False)

    # --- the lane (the sequence in sim/lane.py; this drives it in asyncio)
    def _recorded(self, seq: int | None, result: dict[str, Any]) -> None:
        """The firmware's observer: `seq` None when the outbox refused the scan (the node still showed it)."""
        who, (arrived, visit, _) = self.front.present, self._visit
        code, flags = result.get("code"), list(result.get("flags", []))
        self.on_scan(
            RecordedScan(
                self.site.name, self.name, seq, str(result["verdict"]), result.get("t_site_c"), flags, who,
                time.monotonic(), self._truth if who is not None else False, visit, code, result.get("retest_code"),
            )
        )  # fmt: skip
        if who is not None and self.front.shown_at is None and result["verdict"] == "indeterminate":
            self._come_back(who, arrived, visit, flags, result.get("wait_s"), code)
        self.front.show(self.clock.ticks_ms())
        self.shown.set()

    def _come_back(
        self, who: Traveller, arrived: float, visit: int, flags: list[str], wait_s: int | None, code: int | None
    ) -> None:
        """An indeterminate traveller returns to this lane: after the scanner's wait (None: it cannot get ready
        where it is; they leave unscreened), after minutes inside for a cold face, or at once to stand still."""
        if visit + 1 >= MAX_VISITS:
            return
        rng = random.Random(f"{self.seed}:{who.id}:{visit}:back")
        whose = conditions.whose(flags)
        minutes = None
        if whose == conditions.SCANNER:
            if wait_s is None:
                return
            back = float(wait_s)
        elif whose == conditions.TRAVELLER:
            minutes = rng.uniform(*self.site.retest_after_min)
            back = minutes * 60
        else:
            back = 30.0
        heapq.heappush(self.returns, (arrived + back, who.id, who, visit + 1, minutes, code))

    def _package_c(self, t_s: float) -> float:
        return self.housing.sensor_c(t_s, self.site.ambient_c)

    async def _weather(self, every_ms: int = 1000) -> None:
        """The scanner's package follows its housing; the lane's chip with it."""
        while True:
            t = self.clock.seconds()
            air = self.site.ambient_c
            self.front.set_air(self._package_c(t), air, self.housing.error_c(t, air))
            await self.clock.sleep_ms(every_ms)

    def _arrivals(self, rate_per_min: float, until_s: float) -> list[float]:
        """Every arrival before the end, drawn up front (Poisson): the same seed, the same travellers."""
        out, t = [], self.rng.expovariate(rate_per_min / 60)
        while t < until_s:
            out.append(t)
            t += self.rng.expovariate(rate_per_min / 60)
        return out

    async def lane(self, rate_per_min: float, until_s: float) -> None:
        """Travellers arrive (Poisson) and are scanned one after another, and the indeterminate ones come back,
        until `until_s` simulated seconds (everyone who arrived before then is served, late or not)."""
        if rate_per_min <= 0:
            return
        weather = asyncio.get_running_loop().create_task(self._weather())
        arrivals = self._arrivals(rate_per_min, until_s)
        arrivals.reverse()
        try:
            while arrivals or (self.returns and self.returns[0][0] < until_s):
                if self.returns and (not arrivals or self.returns[0][0] <= arrivals[-1]):
                    at, _, who, visit, minutes, code = heapq.heappop(self.returns)
                else:
                    at, who, visit, minutes, code = arrivals.pop(), self.population.traveller(), 0, None, None
                if self.clock.seconds() < at:
                    await self.clock.sleep_ms(int((at - self.clock.seconds()) * 1000) + 1)
                self._visit = (at, visit, minutes)
                await self._serve(who, visit, minutes, code)
                await self.clock.sleep_ms(self.front.free_at - self.clock.ticks_ms())
        finally:
            weather.cancel()

    def _scene(self, traveller: Traveller, visit: int, minutes: float | None) -> Scene:
        """What the sensor sees of this visit, and the truth of its conditions (`self._truth`)."""
        rng = random.Random(f"{self.seed}:{traveller.id}:{visit}")
        t, site = self.clock.seconds(), self.site
        air = site.retest_air_c if minutes is not None else site.ambient_c
        if minutes is None and traveller.cabin_c is None and not site.indoor:
            air = site.outdoor()  # on foot at an outdoor post: the face is in the post's air
        package = self._package_c(t)
        lo, hi = CAL["ambient_c"]
        scanner_out = not lo <= package <= hi or abs(self.housing.rate_c_min(t, site.ambient_c)) > conditions.RATE_C_MIN
        settled = settled_at_c(traveller, air, minutes)
        face_out = not lo <= settled <= hi or deficit_c(traveller, air, minutes) > TOLERANCE_C
        self._truth = scanner_out or face_out
        return Scene(site_temperature(traveller, site.mode, air, minutes, rng), package)

    async def _serve(
        self, traveller: Traveller, visit: int = 0, minutes: float | None = None, code: int | None = None
    ) -> None:
        """One visit from stepping in to stepping out (no verdict by GIVE_UP_MS: a sensor fault, a node without
        power; they move on unscanned). A retest: staff enter the case's code first."""
        if visit == 0:
            self.travellers += 1
            self.febrile += traveller.febrile
        elif self.firmware is not None and self.powered:
            self.firmware.scanner.arm_retest(code)
        self.shown.clear()
        seen = self._scene(traveller, visit, minutes)
        self.front.step_in(traveller, seen, self.clock.ticks_ms())
        while self.front.update(self.clock.ticks_ms()):
            await self._until(self.front.leaves_at())

    async def _until(self, at_ms: int | None) -> None:
        """Wait until `at_ms` on the node's clock, or until the node shows a verdict if none was shown yet."""
        left_ms = None if at_ms is None else at_ms - self.clock.ticks_ms()
        if self.front.shown_at is not None and left_ms is not None:
            await self.clock.sleep_ms(left_ms)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.shown.wait(), None if left_ms is None else left_ms / 1000 / self.clock.speed)
