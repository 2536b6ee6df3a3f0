"""The scan record codec on MicroPython (and CPython): the same scans must give the same bytes and payloads.

usage: micropython net_record_codec.py FIRMWARE_DIR SCANS_FILE   (one JSON scan a line)
Prints one line per scan: HEX_OF_PACK SPACE PAYLOAD (to_payload with seq = line index, site "s1", node "n1").
"""

import binascii
import json
import sys

sys.path.insert(0, sys.argv[1])
import record

with open(sys.argv[2]) as f:
    for i, line in enumerate(f):
        b = record.pack(json.loads(line))
        print(binascii.hexlify(b).decode(), record.to_payload(i, b, "s1", "n1").decode())
