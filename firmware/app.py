"""The node's entry point: `import app; app.main()` (main.py on the ESP32).

Boot order matters on a 110 KiB heap: the config is read and validated first (config.py, calibration.py and
the JSON are ~20 KB of heap on the host's 64-bit port), reduced to what the node runs on, and those modules are
dropped again before node.py and the rest of the firmware are imported. An invalid config means safe mode:
the reason is printed, a blink code shows, nothing is scanned, and main() returns so the REPL stays usable.
"""

import gc
import sys

SAFE_BAD_CONFIG = 2  # blink code: config.json missing or invalid
CONFIG_FILE = "config.json"


def log(*args):
    print(*args)


def unload(*names):
    """Drop boot-time modules (config, calibration) from memory; they are imported again on a config push."""
    for n in names:
        sys.modules.pop(n, None)
    gc.collect()


def heap_free():
    """Free heap after a collection (MicroPython); None under CPython."""
    gc.collect()
    f = getattr(gc, "mem_free", None)
    return f() if f is not None else None


def boot_config(root):
    """(config, scan settings, None) or (None, None, reason), with the config modules unloaded again."""
    try:
        import config

        cfg, reason = config.load(root + CONFIG_FILE)
        settings = config.scan_settings(cfg) if cfg is not None else None
    finally:
        unload("config", "calibration")
    return cfg, settings, reason


def safe_mode(board, reason):
    """Invalid config: say why, blink the code on the red LED, do not scan; return to the REPL."""
    log("safe mode:", reason)
    import config
    import ui

    board.setup(None)
    leds = ui.UI(board.clock, {"red": board.out(config.DEFAULTS["pins"]["led_red"])})
    leds.safe_mode(SAFE_BAD_CONFIG)
    board.keep_blinking(leds)


def main(board=None):
    """Run the node forever; returns only in safe mode (None). `board`: the host's (sim/host/), else ESP32."""
    if board is None:
        import board as boardmod

        board = boardmod.make()  # pyright: ignore[reportAttributeAccessIssue] (a CircuitPython stub shadows it)
    cfg, settings, reason = boot_config(board.root)
    if cfg is None:
        safe_mode(board, reason)
        return None
    try:
        import asyncio
    except ImportError:  # pragma: no cover
        import uasyncio as asyncio  # type: ignore
    import node

    n = node.Node(board, cfg, settings)
    asyncio.run(n.run())
    return n
