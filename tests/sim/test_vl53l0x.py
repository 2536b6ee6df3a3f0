"""firmware/vl53l0x.py against the simulated VL53L0X (sim/vl53l0x.py) on the I2C bus it shares with the MLX90614.

A bad range status is no distance, never a number: the part's own 8190 mm (nothing seen), its clipped 20 mm
(too close) and a plausible number sent with a hardware failure all read as None, with the status named.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from firmware import module
from sim.clock import ManualClock
from sim.i2c import MachineI2C
from sim.mlx90614 import MLX90614
from sim.vl53l0x import MAX_RANGE_MM, TIMING_BUDGET_MS, VL53L0X, noise_sd_mm

vl53l0x = module("vl53l0x")
mlx90614 = module("mlx90614")


def rig(seed: int = 0) -> tuple[ManualClock, VL53L0X, MLX90614, MachineI2C]:
    clock = ManualClock()
    tof, mlx = VL53L0X(clock, seed=seed), MLX90614(clock, variant="BCC", seed=seed)
    return clock, tof, mlx, MachineI2C({0x5A: mlx, 0x29: tof})  # 100 kHz: the MLX's limit, fine for both


def measure(clock: ManualClock, sensor: Any) -> int | None:
    """One single-shot range, the clock moved in 1 ms steps until it is ready."""
    sensor.start()
    waited = 0
    while not sensor.ready():
        clock.advance(1)
        waited += 1
        assert waited <= 100
    mm: int | None = sensor.read()
    return mm


def test_single_shot_takes_one_timing_budget_and_clears_its_interrupt() -> None:
    clock, tof, _, bus = rig()
    sensor = vl53l0x.VL53L0X(bus)
    sensor.init()
    tof.set_target(150.0)
    sensor.start()
    clock.advance(TIMING_BUDGET_MS - 1)
    assert not sensor.ready()
    clock.advance(1)
    assert sensor.ready()
    mm = sensor.read()
    assert mm is not None and abs(mm - 150) <= 5 * noise_sd_mm(150)
    assert vl53l0x.status_name(sensor.status) == "valid" and sensor.status == vl53l0x.RANGE_COMPLETE
    assert not sensor.ready()  # SYSTEM_INTERRUPT_CLEAR written by read()
    assert tof.starts == 1


@pytest.mark.parametrize("distance", [40.0, 80.0, 220.0, 600.0, 1000.0])
def test_noise_grows_with_distance_as_modelled(distance: float) -> None:
    clock, tof, _, bus = rig(seed=3)
    sensor = vl53l0x.VL53L0X(bus)
    sensor.init()
    tof.set_target(distance)
    got = [measure(clock, sensor) for _ in range(400)]
    values = [g for g in got if g is not None]
    assert len(values) == 400
    sd = noise_sd_mm(distance)
    assert abs(statistics.fmean(values) - distance) <= 4 * sd / 20  # 4 standard errors of the mean
    assert 0.85 * sd <= statistics.stdev(values) <= 1.15 * sd


@pytest.mark.parametrize(
    "target,status,name",
    [
        (None, 4, "signal_fail"),
        (MAX_RANGE_MM + 1.0, 4, "signal_fail"),
        (2500.0, 4, "signal_fail"),
        (20.0, 10, "min_range_fail"),
    ],
)
def test_a_failed_status_is_no_distance(target: float | None, status: int, name: str) -> None:
    clock, tof, _, bus = rig()
    sensor = vl53l0x.VL53L0X(bus)
    sensor.init()
    tof.set_target(target)
    assert measure(clock, sensor) is None
    assert sensor.status == status and vl53l0x.status_name(sensor.status) == name
    raw = bus.readfrom_mem(0x29, 0x14, 12)
    assert (raw[10] << 8 | raw[11]) in (8190, 20)  # the number the part sent, which the driver refused


def test_a_hardware_failure_with_a_plausible_range_is_no_distance() -> None:
    clock, tof, _, bus = rig()
    sensor = vl53l0x.VL53L0X(bus)
    sensor.init()
    tof.set_target(70.0)
    tof.inject("vcsel_fail")
    assert measure(clock, sensor) is None
    assert vl53l0x.status_name(sensor.status) == "hardware_fail"
    raw = bus.readfrom_mem(0x29, 0x14, 12)
    assert (raw[10] << 8 | raw[11]) == 70  # a believable number: only the status says it is not one
    tof.clear()
    assert measure(clock, sensor) is not None


def test_bus_faults_and_a_wrong_part_are_named_errors() -> None:
    clock, tof, _, bus = rig()
    tof.inject("no_device")
    sensor = vl53l0x.VL53L0X(bus)
    with pytest.raises(vl53l0x.RangeError) as e:
        sensor.init()
    assert e.value.reason == "nack" and sensor.errors == 1
    other = VL53L0X(clock, model_id=0xEA)  # a VL53L1X's id at the same address
    with pytest.raises(vl53l0x.RangeError) as e:
        vl53l0x.VL53L0X(MachineI2C({0x29: other})).init()
    assert e.value.reason == "wrong_id"


def test_init_sets_2v8_io_standard_mode_and_keeps_the_stop_variable() -> None:
    clock, tof, _, bus = rig()
    sensor = vl53l0x.VL53L0X(bus)
    sensor.init()
    assert tof.register(0x89) & 0x01 == 1 and tof.register(0x88) == 0x00
    assert tof.register(0x0A) == 0x04 and tof.register(0x84) & 0x10 == 0
    tof.set_target(100.0)
    measure(clock, sensor)
    assert tof.register(0x91, page=1) == 0x3C  # written back unchanged before the start (the API's sequence)
    assert tof.register(0xFF) == 0x00  # back on page 0 after each private-page access


def test_both_drivers_share_the_bus() -> None:
    clock, tof, mlx, bus = rig()
    mlx.set_scene(object_c=35.5, ambient_c=22.0)
    clock.advance(2000)
    ranger, thermometer = vl53l0x.VL53L0X(bus), mlx90614.MLX90614(bus)
    ranger.init()
    tof.set_target(65.0)
    ranger.start()
    for _ in range(TIMING_BUDGET_MS):
        assert abs(thermometer.object() - 35.5) < 0.5  # reads between the range's start and its end
        clock.advance(1)
    assert ranger.ready() and abs((ranger.read() or 0) - 65) <= 10
    assert bus.scan() == [0x29, 0x5A]
