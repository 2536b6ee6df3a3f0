"""firmware/mlx90614.py under CPython against the simulated chip: conversion, PEC, faults -> named errors,
never a wrong temperature, EEPROM writes that happen once and are verified."""

from __future__ import annotations

import random

import adafruit_mlx90614
import pytest

from firmware import module
from sim.clock import ManualClock
from sim.i2c import BusioI2C, MachineI2C
from sim.mlx90614 import MLX90614 as Chip
from sim.mlx90614 import pec

mlx90614 = module("mlx90614")
MLX90614, SensorError = mlx90614.MLX90614, mlx90614.SensorError
celsius, compensate_supply, crc8 = mlx90614.celsius, mlx90614.compensate_supply, mlx90614.crc8

ADDR = 0x5A
RETRIES = 3


class Rig:
    """One chip on one machine.I2C bus, our driver on it, simulated time past the power-up."""

    def __init__(self, variant: str = "DCI", noise: bool = False, seed: int = 0) -> None:
        self.clock = ManualClock()
        self.chip = Chip(self.clock, variant=variant, noise=noise, seed=seed)
        self.bus = MachineI2C({ADDR: self.chip})
        self.sensor = MLX90614(self.bus, retries=RETRIES)
        self.scene(36.0, 20.0)

    def scene(self, object_c: float, ambient_c: float) -> None:
        self.chip.set_scene(object_c=object_c, ambient_c=ambient_c)
        self.clock.advance(10_000)  # > 15 time constants of the slowest factory part


# --- datasheet worked examples ---
@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ((0xB4, 0x07, 0xB5, 0xD2, 0x3A), 0x30),  # Read Word Tobj1 = 0x3AD2 at 0x5A
        ((0xB4, 0x22, 0x07, 0xC8), 0x48),  # Write Word PWMCTRL = 0xC807 at 0x5A
        ((0xB4, 0xFF), 0xE8),  # Sleep at 0x5A
        ((0x00, 0x2E, 0x00, 0x00), 0x6F),  # erase the address cell at SA 0x00
        ((0x00, 0x2E, 0x5A, 0x00), 0xE1),  # write address 0x5A at SA 0x00
    ],
    ids=["read-0x30", "write-0x48", "sleep-0xE8", "erase-0x6F", "address-0xE1"],
)
def test_pec_matches_the_datasheet_examples(frame: tuple[int, ...], expected: int) -> None:
    assert crc8(bytes(frame)) == expected == pec(frame)


def test_conversion_matches_the_datasheet() -> None:
    assert celsius(0x3AD2) == pytest.approx(28.01, abs=1e-9)
    assert celsius(0x7FFF) == pytest.approx(382.19, abs=1e-9)  # the largest valid reading
    assert celsius(0x27AD) == pytest.approx(-70.01, abs=1e-9)


def test_driver_reads_the_datasheet_example_word() -> None:
    rig = Rig()
    rig.scene(28.01, 20.0)
    assert rig.sensor.object_raw() == 0x3AD2
    assert rig.sensor.object() == pytest.approx(28.01, abs=1e-9)
    assert rig.sensor.ambient() == pytest.approx(20.0, abs=0.011)


def test_compensate_supply_is_0_6_c_per_volt_about_3_v() -> None:
    assert compensate_supply(36.0, 3.0) == 36.0
    assert compensate_supply(36.0, 3.3) == pytest.approx(35.82)
    assert compensate_supply(36.0, 2.8) == pytest.approx(36.12)


# --- faults: retry, then a named SensorError, never a number ---
@pytest.mark.parametrize(
    ("kind", "params", "reason"),
    [
        ("no_device", {}, "nack"),
        ("stuck_bus", {}, "bus_timeout"),
        ("bus_noise", {"p": 1.0}, "pec"),
        ("ffff_burst", {"n": 100}, "invalid_ffff"),
        ("error_flag", {}, "error_flag"),
        ("out_of_range", {"object_c": 450.0}, "error_flag"),
        ("out_of_range", {"object_c": -100.0}, "error_flag"),
    ],
)
def test_fault_is_retried_then_named(kind: str, params: dict[str, float], reason: str) -> None:
    rig = Rig()
    rig.chip.inject(kind, **params)
    before = rig.bus.reads
    with pytest.raises(SensorError) as e:
        rig.sensor.object()
    assert e.value.reason == reason
    assert rig.bus.reads - before == RETRIES + 1
    assert rig.sensor.fault_counts[reason] == RETRIES + 1 and rig.sensor.error_count == 1
    rig.chip.clear(kind)
    assert rig.sensor.object() == pytest.approx(36.0, abs=0.011)


def test_two_parts_answering_one_address_is_a_bus_error() -> None:
    clock = ManualClock()
    a, b = Chip(clock, address=0x5A), Chip(clock, address=0x5A)
    with pytest.raises(SensorError) as e:
        MLX90614(MachineI2C({0x5A: a, 0x5B: b})).object()
    assert e.value.reason == "bus_error"


def test_short_ffff_burst_is_retried_away() -> None:
    rig = Rig()
    rig.chip.inject("ffff_burst", n=RETRIES)
    assert rig.sensor.object() == pytest.approx(36.0, abs=0.011)
    assert rig.sensor.fault_counts["invalid_ffff"] == RETRIES and rig.sensor.error_count == 0


def test_object2_on_a_single_zone_part_is_an_error_not_a_number() -> None:
    rig = Rig("DCI")
    with pytest.raises(SensorError) as e:
        rig.sensor.object2()
    assert e.value.reason == "error_flag"
    dual = Rig("BBA")
    assert dual.sensor.object2() == pytest.approx(36.0, abs=0.011)


def test_bus_noise_never_yields_a_wrong_temperature() -> None:
    """Property, fixed seed: 60 scenes x 50 reads with 30% of transfers corrupted. Every value returned is the
    truth within the part's noise (DCI 0.10 C rms; bound 6 sigma), and failures are named PEC errors."""
    rng = random.Random(2024)
    rig = Rig("DCI", noise=True, seed=5)
    rig.chip.inject("bus_noise", p=0.3)
    returned, errors, worst = 0, 0, 0.0
    for _ in range(60):
        object_c, ambient_c = rng.uniform(-20.0, 60.0), rng.uniform(-10.0, 40.0)
        rig.scene(object_c, ambient_c)
        for _ in range(50):
            try:
                value = rig.sensor.object()
            except SensorError as e:
                assert e.reason == "pec"
                errors += 1
                continue
            returned += 1
            worst = max(worst, abs(value - object_c))
    assert worst < 0.6
    assert returned > 2900 and errors > 0  # 0.3**4: about 1 read in 120 exhausts its retries


def test_adafruit_driver_turns_the_same_noise_into_wrong_numbers() -> None:
    """Why we check PEC: upstream reads two bytes and returns whatever arrives."""
    clock = ManualClock()
    chip = Chip(clock, noise=False, seed=5)
    chip.set_scene(object_c=36.0, ambient_c=20.0)
    clock.advance(10_000)
    theirs = adafruit_mlx90614.MLX90614(BusioI2C({ADDR: chip}))
    chip.inject("bus_noise", p=0.3)
    wrong = sum(abs(theirs.object_temperature - 36.0) > 0.6 for _ in range(1000))
    assert wrong > 100


# --- EEPROM ---
def test_factory_emissivity_is_not_rewritten() -> None:
    rig = Rig()
    assert rig.sensor.emissivity() == 1.0
    assert rig.sensor.set_emissivity(1.0, rig.clock.advance) is False
    assert rig.chip.eeprom_write_count(0x24) == 0


def test_set_emissivity_writes_once_verifies_and_applies_after_power_cycle() -> None:
    rig = Rig()
    start = rig.clock.ticks_ms()
    assert rig.sensor.set_emissivity(0.98, rig.clock.advance) is True
    assert rig.clock.ticks_diff(rig.clock.ticks_ms(), start) >= 20  # waited after the erase and the write
    assert rig.chip.eeprom(0x24) == round(0.98 * 65535)
    assert rig.chip.eeprom_write_count(0x24) == 2  # one erase + one write
    assert rig.sensor.emissivity() == pytest.approx(0.98, abs=1e-4)
    assert rig.sensor.object() == pytest.approx(36.0, abs=0.011)  # old emissivity until power cycle
    for _ in range(5):  # e.g. every boot: no more writes
        assert rig.sensor.set_emissivity(0.98, rig.clock.advance) is False
    assert rig.chip.eeprom_write_count(0x24) == 2
    rig.chip.power_cycle()
    rig.clock.advance(300)
    assert rig.sensor.object() > 36.2


def test_set_filter_only_touches_the_filter_bits() -> None:
    rig = Rig()
    before = rig.chip.eeprom(0x25)
    assert rig.sensor.filter() == (4, 7)
    assert rig.sensor.set_filter(0, 6, rig.clock.advance) is True
    assert rig.sensor.filter() == (0, 6)
    assert rig.chip.eeprom(0x25) & ~0x0707 == before & ~0x0707
    assert rig.sensor.set_filter(0, 6, rig.clock.advance) is False
    with pytest.raises(ValueError):
        rig.sensor.set_filter(0, 2, rig.clock.advance)


def test_eeprom_write_under_bus_noise_is_verified_or_named_and_the_next_call_completes_it() -> None:
    for seed in range(20):
        rig = Rig(seed=seed)
        rig.chip.inject("bus_noise", p=0.3)
        failures = []
        for _ in range(5):
            try:
                rig.sensor.set_emissivity(0.95, rig.clock.advance)
                break
            except SensorError as e:
                failures.append(e.reason)
        assert set(failures) <= {"pec", "bus_error"}, failures
        assert rig.chip.eeprom(0x24) == round(0.95 * 65535)
        assert rig.chip.eeprom_write_count(0x24) <= 2 * (len(failures) + 1)


def test_eeprom_refuses_cells_and_values_it_must_not_write() -> None:
    rig = Rig()
    with pytest.raises(ValueError):
        rig.sensor.write_eeprom(0x1C, 0x1234, rig.clock.advance)  # ID cell
    with pytest.raises(ValueError):
        rig.sensor.set_emissivity(0.05, rig.clock.advance)
    assert rig.bus.writes == 0


def test_eeprom_write_to_an_unanswering_part_is_named() -> None:
    rig = Rig()
    rig.chip.inject("no_device")
    with pytest.raises(SensorError) as e:
        rig.sensor.set_emissivity(0.95, rig.clock.advance)
    assert e.value.reason == "nack"


# --- flags and sleep ---
def test_flags_show_init_done_and_eebusy_after_a_write() -> None:
    rig = Rig()
    assert rig.sensor.flags() == 0x10
    rig.bus.writeto_mem(ADDR, 0x24, bytes((0, 0, pec((0xB4, 0x24, 0, 0)))))
    assert rig.sensor.flags() & 0x80


def test_sleep_then_reads_are_nacked_until_woken() -> None:
    rig = Rig()
    rig.sensor.sleep()
    assert rig.chip.asleep
    with pytest.raises(SensorError) as e:
        rig.sensor.object()
    assert e.value.reason == "nack"
    rig.chip.wake()
    rig.clock.advance(250)
    assert rig.sensor.object() == pytest.approx(36.0, abs=0.011)
