"""firmware/auth.py's HMAC-SHA256 on MicroPython: one hex digest a line for the vectors in VECTORS_FILE
(JSON list of [key hex, message hex]).

usage: micropython hmac_vectors.py FIRMWARE_DIR VECTORS_FILE
"""

import json
import sys

sys.path.insert(0, sys.argv[1])
import binascii

import auth

with open(sys.argv[2]) as f:
    for key, msg in json.load(f):
        print(binascii.hexlify(auth.hmac_sha256(binascii.unhexlify(key), binascii.unhexlify(msg))).decode())
