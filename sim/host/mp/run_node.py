"""Run the node firmware under MicroPython with the bridged board: what main.py does on the ESP32.

    micropython -X heapsize=112wk sim/host/mp/run_node.py MPY_DIR NODE_DIR
with CHECKPOINT_BRIDGE_PORT and CHECKPOINT_SPEED set (sim/host/node.py does this). MPY_DIR holds the firmware
compiled to .mpy, with this directory's board.mpy in place of the ESP32 one; NODE_DIR is the node's
filesystem: config.json, boot.txt, outbox/.
"""

import os
import sys

sys.path.insert(0, sys.argv[1])
os.chdir(sys.argv[2])

import app  # noqa: E402

app.main()
