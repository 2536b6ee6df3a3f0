"""The simulated buses: machine.I2C and busio.I2C semantics over the simulated chip, and the upstream Adafruit
driver reading it unmodified, in agreement with ours."""

from __future__ import annotations

import errno

import adafruit_mlx90614
import pytest

from firmware import module
from sim.clock import ManualClock
from sim.i2c import BusioI2C, MachineI2C
from sim.mlx90614 import MLX90614

Driver = module("mlx90614").MLX90614

ADDR = 0x5A


def settled_chip(object_c: float = 36.0, ambient_c: float = 20.0) -> tuple[ManualClock, MLX90614]:
    clock = ManualClock()
    chip = MLX90614(clock, noise=False)
    chip.set_scene(object_c=object_c, ambient_c=ambient_c)
    clock.advance(10_000)
    return clock, chip


# --- machine.I2C ---
def test_repeated_start_forms_read_the_same_word() -> None:
    _, chip = settled_chip()
    bus = MachineI2C({ADDR: chip})
    via_mem = bus.readfrom_mem(ADDR, 0x07, 3)
    assert bus.writeto(ADDR, b"\x07", False) == 1
    via_sr = bus.readfrom(ADDR, 3)
    buf = bytearray(3)
    bus.readfrom_mem_into(ADDR, 0x07, buf)
    assert via_mem == via_sr == bytes(buf)
    assert bus.readfrom_mem(ADDR, 0x07, 2) == via_mem[:2]
    assert bus.readfrom_mem(ADDR, 0x07, 4) == via_mem + b"\xff"  # past the PEC the bus is released


def test_read_without_repeated_start_gets_eio() -> None:
    _, chip = settled_chip()
    bus = MachineI2C({ADDR: chip})
    with pytest.raises(OSError) as e:
        bus.readfrom(ADDR, 3)
    assert e.value.errno == errno.EIO
    bus.writeto(ADDR, b"\x07")  # with a stop: the command is lost
    with pytest.raises(OSError):
        bus.readfrom(ADDR, 3)


def test_missing_address_is_enodev_and_probe_works() -> None:
    _, chip = settled_chip()
    bus = MachineI2C({ADDR: chip})
    assert bus.writeto(ADDR, b"") == 0
    with pytest.raises(OSError) as e:
        bus.readfrom_mem(0x5B, 0x07, 3)
    assert e.value.errno == errno.ENODEV


def test_bus_refuses_speeds_the_mlx_cannot_take() -> None:
    _, chip = settled_chip()
    with pytest.raises(ValueError, match="100000"):
        MachineI2C({ADDR: chip}, freq=400_000)
    with pytest.raises(ValueError):
        BusioI2C({ADDR: chip}, frequency=400_000)
    MachineI2C({ADDR: chip}, freq=50_000)


def test_two_parts_on_one_bus_and_the_general_address_collision() -> None:
    clock = ManualClock()
    a, b = MLX90614(clock, address=0x5A), MLX90614(clock, address=0x5B)
    bus = MachineI2C({0x5A: a, 0x5B: b})
    assert bus.scan() == [0x5A, 0x5B]
    with pytest.raises(OSError) as e:  # both answer 0x00
        bus.readfrom_mem(0x00, 0x07, 3)
    assert e.value.errno == errno.EIO
    b.inject("stuck_bus")  # one part holding SDA low blocks the other too
    with pytest.raises(OSError) as e:
        bus.readfrom_mem(0x5A, 0x07, 3)
    assert e.value.errno == errno.ETIMEDOUT


def test_writevto_and_16_bit_addresses() -> None:
    _, chip = settled_chip()
    bus = MachineI2C({ADDR: chip})
    bus.writevto(ADDR, [b"\xff", b"\xe8"])  # Sleep with its PEC
    assert chip.asleep
    with pytest.raises(ValueError):
        bus.readfrom_mem(ADDR, 0x07, 3, addrsize=16)


# --- busio.I2C and the Adafruit driver ---
def test_busio_needs_the_lock() -> None:
    _, chip = settled_chip()
    bus = BusioI2C({ADDR: chip})
    with pytest.raises(RuntimeError):
        bus.scan()
    assert bus.try_lock() and not bus.try_lock()
    assert bus.scan() == [ADDR]
    buf = bytearray(3)
    bus.writeto_then_readfrom(ADDR, b"\x07", buf)
    assert buf[0] | buf[1] << 8 == round((36.0 + 273.15) / 0.02)
    bus.unlock()


def test_adafruit_driver_reads_the_chip_unmodified() -> None:
    _, chip = settled_chip(object_c=36.6, ambient_c=21.0)
    mlx = adafruit_mlx90614.MLX90614(BusioI2C({ADDR: chip}))
    assert mlx.object_temperature == pytest.approx(36.6, abs=0.011)
    assert mlx.ambient_temperature == pytest.approx(21.0, abs=0.011)


def test_adafruit_driver_probe_reports_a_missing_part() -> None:
    _, chip = settled_chip()
    chip.inject("no_device")
    with pytest.raises(ValueError, match="No I2C device"):
        adafruit_mlx90614.MLX90614(BusioI2C({ADDR: chip}))


def test_adafruit_and_our_driver_agree_over_a_sweep_of_scenes() -> None:
    """Noise off, so both drivers read the very same word; ours must agree to within 0.02 C everywhere."""
    clock = ManualClock()
    chip = MLX90614(clock, variant="BAA", noise=False)
    theirs = adafruit_mlx90614.MLX90614(BusioI2C({ADDR: chip}))
    ours = Driver(MachineI2C({ADDR: chip}))
    worst = 0.0
    for ambient_c in (-10.0, 0.0, 15.0, 25.0, 40.0):
        for object_c in (-40.0, -5.0, 0.0, 12.3, 28.01, 33.3, 35.9, 37.5, 41.2, 60.0, 150.0, 380.0):
            chip.set_scene(object_c=object_c, ambient_c=ambient_c)
            clock.advance(2_000)
            worst = max(
                worst,
                abs(theirs.object_temperature - ours.object()),
                abs(theirs.ambient_temperature - ours.ambient()),
            )
            assert ours.object() == pytest.approx(object_c, abs=0.011)
    assert worst <= 0.02
