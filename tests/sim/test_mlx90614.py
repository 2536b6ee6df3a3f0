"""The simulated MLX90614 at the byte level: PEC, RAM, EEPROM rules, flags, power, filter, noise, faults.

Everything runs on a ManualClock: settling times and busy windows are measured in simulated milliseconds.
"""

from __future__ import annotations

import asyncio
import errno
import math
import statistics

import pytest

from firmware import module
from sim.clock import ManualClock
from sim.i2c import MachineI2C
from sim.mlx90614 import MLX90614, VARIANTS, pec, settling_time_s

Driver = module("mlx90614").MLX90614
SensorError = module("mlx90614").SensorError

ADDR = 0x5A
ADDR_W = ADDR << 1


Rig = tuple[ManualClock, MLX90614, MachineI2C]


def make(variant: str = "DCI", noise: bool = False, seed: int = 0) -> Rig:
    clock = ManualClock()
    chip = MLX90614(clock, variant=variant, seed=seed, noise=noise)
    clock.advance(300)  # past the 0.25 s power-up
    return clock, chip, MachineI2C({ADDR: chip})


def write_word(bus: MachineI2C, cmd: int, value: int, addr: int = ADDR) -> None:
    lsb, msb = value & 0xFF, value >> 8
    bus.writeto_mem(addr, cmd, bytes((lsb, msb, pec((addr << 1, cmd, lsb, msb)))))


def word(bus: MachineI2C, cmd: int) -> int:
    b = bus.readfrom_mem(ADDR, cmd, 3)
    assert b[2] == pec((ADDR_W, cmd, ADDR_W | 1, b[0], b[1])), "chip sent a bad PEC"
    return b[0] | b[1] << 8


def flags(bus: MachineI2C) -> int:
    return word(bus, 0xF0)


# --- the injected clock ---
def test_manual_clock_moves_only_when_told_and_sleep_advances_it() -> None:
    clock = ManualClock(start_ms=1000)
    assert clock.ticks_ms() == 1000 and clock.unix_ms() is None
    asyncio.run(clock.sleep_ms(250))
    clock.advance(50)
    assert clock.ticks_diff(clock.ticks_ms(), 1000) == 300
    clock.set_unix_ms(1_700_000_000_000)
    clock.advance(5)
    assert clock.unix_ms() == 1_700_000_000_005
    with pytest.raises(ValueError):
        clock.advance(-1)


# --- datasheet worked examples ---
def test_read_word_sends_the_datasheet_example_bytes() -> None:
    """Tobj1 = 0x3AD2 (28.01 C) read at 0x5A comes with PEC 0x30: B4 07 B5 D2 3A 30."""
    clock, chip, bus = make()
    chip.set_scene(object_c=28.01, ambient_c=20.0)
    clock.advance(10_000)
    assert bus.readfrom_mem(ADDR, 0x07, 3) == bytes((0xD2, 0x3A, 0x30))


def test_write_word_accepts_the_datasheet_example_and_rejects_a_bad_pec() -> None:
    """PWMCTRL (0x22) := 0xC807 with PEC 0x48; the same frame with PEC 0x49 is NACKed and ignored."""
    clock, chip, bus = make()
    write_word(bus, 0x22, 0x0000)  # erase first
    clock.advance(10)
    with pytest.raises(OSError) as bad:
        bus.writeto_mem(ADDR, 0x22, bytes((0x07, 0xC8, 0x49)))
    assert bad.value.errno == errno.EIO
    assert chip.eeprom(0x22) == 0x0000
    bus.writeto_mem(ADDR, 0x22, bytes((0x07, 0xC8, 0x48)))
    assert chip.eeprom(0x22) == 0xC807


def test_sleep_command_with_datasheet_pec_puts_the_part_to_sleep_until_woken() -> None:
    clock, chip, bus = make()
    with pytest.raises(OSError):
        bus.writeto(ADDR, bytes((0xFF, 0xE7)))  # wrong PEC: ignored
    assert not chip.asleep
    bus.writeto(ADDR, bytes((0xFF, 0xE8)))
    assert chip.asleep
    with pytest.raises(OSError) as e:
        bus.readfrom_mem(ADDR, 0x07, 3)
    assert e.value.errno == errno.ENODEV
    chip.wake()
    assert word(bus, 0x07) == 0x0000  # awake, but no data before 0.25 s
    clock.advance(250)
    assert word(bus, 0x07) != 0x0000


def test_five_volt_part_has_no_sleep_mode() -> None:
    _, chip, bus = make("AAA")
    with pytest.raises(OSError):
        bus.writeto(ADDR, bytes((0xFF, 0xE8)))
    assert not chip.asleep


def test_address_change_through_general_address_with_datasheet_pecs() -> None:
    """Erase cell 0x0E at SA 0x00 (PEC 0x6F), write 0x005A (PEC 0xE1); then move to 0x5B at power-up."""
    clock, chip, bus = make()
    bus.writeto_mem(0x00, 0x2E, bytes((0x00, 0x00, 0x6F)))
    clock.advance(10)
    bus.writeto_mem(0x00, 0x2E, bytes((0x5A, 0x00, 0xE1)))
    clock.advance(10)
    assert chip.eeprom(0x2E) == 0x005A
    write_word(bus, 0x2E, 0x0000, addr=0x00)
    clock.advance(10)
    write_word(bus, 0x2E, 0x005B, addr=0x00)
    assert bus.scan() == [0x5A]  # the new address is loaded at power-up
    chip.power_cycle()
    assert bus.scan() == [0x5B]


# --- RAM ---
def test_ram_holds_its_power_on_value_and_init_flag_is_low_for_250_ms() -> None:
    clock = ManualClock()
    chip = MLX90614(clock, noise=False)
    chip.set_scene(object_c=36.0, ambient_c=22.0)
    bus = MachineI2C({ADDR: chip})
    clock.advance(249)
    assert word(bus, 0x06) == 0 and word(bus, 0x07) == 0
    assert flags(bus) & 0x10 == 0
    clock.advance(1)
    assert flags(bus) & 0x10
    assert word(bus, 0x07) == round((36.0 + 273.15) / 0.02)


def test_fill_mixes_the_object_with_the_background() -> None:
    clock, chip, bus = make()
    chip.set_scene(object_c=36.0, ambient_c=20.0, fill=0.5)
    clock.advance(10_000)
    assert word(bus, 0x07) * 0.02 - 273.15 == pytest.approx(28.0, abs=0.011)
    chip.set_scene(object_c=36.0, ambient_c=20.0, fill=0.5, background_c=10.0)
    clock.advance(10_000)
    assert word(bus, 0x07) * 0.02 - 273.15 == pytest.approx(23.0, abs=0.011)


def test_dual_zone_part_reports_object2_and_single_zone_part_flags_it() -> None:
    clock, chip, bus = make("BBA")
    chip.set_scene(object_c=36.0, ambient_c=20.0, object2_c=30.0)
    clock.advance(10_000)
    assert word(bus, 0x08) * 0.02 - 273.15 == pytest.approx(30.0, abs=0.011)
    assert word(bus, 0x07) * 0.02 - 273.15 == pytest.approx(36.0, abs=0.011)
    _, _, single = make("DCI")
    assert word(single, 0x08) & 0x8000


def test_raw_ir_channel_is_sign_and_magnitude() -> None:
    clock, chip, bus = make()
    chip.set_scene(object_c=40.0, ambient_c=20.0)
    clock.advance(10_000)
    warm = word(bus, 0x04)
    chip.set_scene(object_c=0.0, ambient_c=20.0)
    clock.advance(10_000)
    cold = word(bus, 0x04)
    assert warm & 0x8000 == 0 and warm > 0
    assert cold & 0x8000 and cold & 0x7FFF > 0


def test_object_beyond_measurable_range_sets_the_error_flag() -> None:
    clock, chip, bus = make()
    chip.set_scene(object_c=500.0, ambient_c=20.0)
    clock.advance(10_000)
    assert word(bus, 0x07) & 0x8000
    chip.set_scene(object_c=36.0, ambient_c=20.0)
    clock.advance(10_000)
    assert not word(bus, 0x07) & 0x8000
    chip.inject("out_of_range", object_c=-90.0)
    assert word(bus, 0x07) & 0x8000
    chip.clear("out_of_range")
    chip.inject("error_flag")
    assert word(bus, 0x07) & 0x8000 and not word(bus, 0x06) & 0x8000


def test_unknown_command_is_nacked() -> None:
    _, _, bus = make()
    with pytest.raises(OSError) as e:
        bus.readfrom_mem(ADDR, 0x10, 3)
    assert e.value.errno == errno.EIO


# --- EEPROM ---
def test_factory_eeprom_emissivity_one_and_filter_iir100_fir1024() -> None:
    _, _, bus = make()
    assert word(bus, 0x24) == 0xFFFF
    cfg = word(bus, 0x25)
    assert (cfg & 7, (cfg >> 8) & 7) == (4, 7)
    assert word(bus, 0x2E) & 0x7F == ADDR


def test_non_writable_cell_keeps_its_value() -> None:
    clock, chip, bus = make()
    before = chip.eeprom(0x3C)  # ID word
    write_word(bus, 0x3C, 0x0000)
    clock.advance(10)
    write_word(bus, 0x3C, 0x1234)
    assert chip.eeprom(0x3C) == before
    assert chip.eeprom_write_count(0x3C) == 0


def test_write_without_erase_garbles_the_cell() -> None:
    """Factory PWMCTRL 0x0201 written with 0xC807 without the erase: the cell ends up 0x0201 AND 0xC807."""
    _, chip, bus = make()
    write_word(bus, 0x22, 0xC807)
    assert chip.eeprom(0x22) == 0x0201 & 0xC807 != 0xC807


def test_eebusy_for_5_ms_after_a_write_and_writes_meanwhile_are_nacked() -> None:
    clock, chip, bus = make()
    write_word(bus, 0x24, 0x0000)
    assert flags(bus) & 0x80
    with pytest.raises(OSError):
        write_word(bus, 0x24, 0xF332)
    clock.advance(5)
    assert not flags(bus) & 0x80
    write_word(bus, 0x24, 0xF332)
    assert chip.eeprom(0x24) == 0xF332
    assert chip.eeprom_write_count(0x24) == 2 == chip.eeprom_write_count(0x04)


def test_new_emissivity_takes_effect_after_a_power_cycle() -> None:
    clock, chip, bus = make()
    chip.set_scene(object_c=36.0, ambient_c=20.0)
    clock.advance(10_000)
    before = word(bus, 0x07)
    write_word(bus, 0x24, 0x0000)
    clock.advance(10)
    e = 0.95
    write_word(bus, 0x24, round(65535 * e))
    clock.advance(10)
    assert word(bus, 0x07) == before
    chip.power_cycle()
    clock.advance(300)
    seen4, ta4 = (36.0 + 273.15) ** 4, (20.0 + 273.15) ** 4
    expected = ((seen4 - (1 - e) * ta4) / e) ** 0.25 - 273.15  # e*To^4 + (1-e)*Ta^4 = seen^4
    assert word(bus, 0x07) * 0.02 - 273.15 == pytest.approx(expected, abs=0.011)
    assert expected > 36.5


# --- filter settling and noise ---
def t90_ms(variant: str, iir: int | None = None, fir: int | None = None) -> int:
    """Simulated ms after a 20 -> 40 C step until the driver first reads 90% of the step (38 C)."""
    clock, chip, bus = make(variant)
    sensor = Driver(bus)
    if iir is not None and fir is not None:
        assert sensor.set_filter(iir, fir, clock.advance)
        chip.power_cycle()
        clock.advance(300)
    chip.set_scene(object_c=20.0, ambient_c=20.0)
    clock.advance(60_000)
    chip.set_scene(object_c=40.0, ambient_c=20.0)
    for elapsed in range(20_000):
        if sensor.object() >= 38.0:
            return elapsed
        clock.advance(1)
    raise AssertionError("never settled")


@pytest.mark.parametrize(("variant", "datasheet_s"), [("BAA", 0.10), ("BCC", 0.14), ("DCI", 0.65)])
def test_settling_time_at_factory_settings_matches_the_datasheet(variant: str, datasheet_s: float) -> None:
    # Readings are quantised to 0.02 C, so the 90% line is crossed up to ~4 ms early on the slowest part.
    assert abs(t90_ms(variant) - datasheet_s * 1000) <= 5


@pytest.mark.parametrize(
    ("variant", "iir", "fir", "datasheet_s"),
    [("BAA", 4, 4, 0.04), ("DCI", 3, 7, 7.0)],
    ids=["fastest", "slowest"],
)
def test_filter_table_spans_the_datasheet_range(variant: str, iir: int, fir: int, datasheet_s: float) -> None:
    assert settling_time_s(variant, 0x9FB0 & 0xF8F8 | iir | fir << 8) == pytest.approx(datasheet_s, rel=1e-3)
    assert abs(t90_ms(variant, iir, fir) - datasheet_s * 1000) <= max(5, datasheet_s * 10)


@pytest.mark.parametrize("variant", ["BAA", "BCC", "DCI"])
def test_noise_rms_matches_the_variant(variant: str) -> None:
    clock, chip, bus = make(variant, noise=True, seed=7)
    chip.set_scene(object_c=35.0, ambient_c=22.0)
    clock.advance(60_000)
    readings = [word(bus, 0x07) * 0.02 - 273.15 for _ in range(2000)]
    rms = math.sqrt(statistics.fmean((r - 35.0) ** 2 for r in readings))
    assert rms == pytest.approx(VARIANTS[variant].noise_c, rel=0.1)


def test_same_seed_same_readings() -> None:
    runs = []
    for _ in range(2):
        clock, chip, bus = make(noise=True, seed=3)
        chip.set_scene(object_c=35.0, ambient_c=22.0)
        clock.advance(5_000)
        runs.append([bus.readfrom_mem(ADDR, 0x07, 3) for _ in range(20)])
    assert runs[0] == runs[1]


# --- faults ---
def test_bus_noise_corrupts_reads_and_the_pec_catches_every_one() -> None:
    clock, chip, bus = make(seed=11)
    chip.set_scene(object_c=36.0, ambient_c=20.0)
    clock.advance(10_000)
    truth = bus.readfrom_mem(ADDR, 0x07, 3)
    chip.inject("bus_noise", p=0.5)
    frames = [bus.readfrom_mem(ADDR, 0x07, 3) for _ in range(1000)]
    corrupted = [f for f in frames if f != truth]
    assert 400 < len(corrupted) < 600
    assert all(f[2] != pec((ADDR_W, 0x07, ADDR_W | 1, f[0], f[1])) for f in corrupted)


def test_ffff_burst_then_normal_reads() -> None:
    _, chip, bus = make()
    chip.inject("ffff_burst", n=2)
    assert [bus.readfrom_mem(ADDR, 0x07, 3) for _ in range(2)] == [b"\xff\xff\xff"] * 2
    assert bus.readfrom_mem(ADDR, 0x07, 3) != b"\xff\xff\xff"


@pytest.mark.parametrize(("kind", "code"), [("no_device", errno.ENODEV), ("stuck_bus", errno.ETIMEDOUT)])
def test_bus_level_faults_raise_the_esp32_errno(kind: str, code: int) -> None:
    _, chip, bus = make()
    chip.inject(kind)
    with pytest.raises(OSError) as e:
        bus.readfrom_mem(ADDR, 0x07, 3)
    assert e.value.errno == code
    assert bus.scan() == []
    chip.clear(kind)
    assert bus.scan() == [ADDR]


def test_unknown_fault_or_parameter_is_refused() -> None:
    _, chip, _ = make()
    with pytest.raises(ValueError):
        chip.inject("gremlins")
    with pytest.raises(ValueError):
        chip.inject("bus_noise", q=0.5)
    with pytest.raises(ValueError):
        chip.inject("out_of_range", object_c=36.0)


def test_driver_sees_the_power_up_window_as_not_ready() -> None:
    clock = ManualClock()
    sensor = Driver(MachineI2C({ADDR: MLX90614(clock, noise=False)}))
    with pytest.raises(SensorError) as e:
        sensor.object()
    assert e.value.reason == "not_ready"
    clock.advance(250)
    assert sensor.object() == pytest.approx(20.0, abs=0.011)
