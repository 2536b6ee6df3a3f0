"""Hardware for the host: the boards that let the real firmware run here with sim/ supplying the hardware.

- `board.HostBoard`: the firmware board interface (firmware/board.py) over simulated parts, for CPython
  (the simulator runs firmware/app.py in-process with it) and as the far end of the bridge.
- `bridge.BridgeServer`: serves a HostBoard over a local TCP socket to `mp/board.py`, the board module the
  real MicroPython interpreter imports instead of the ESP32 one (testkit/micropython.py runs that node).
"""
