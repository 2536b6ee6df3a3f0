"""MQTT packet encoding on MicroPython (and CPython): prints the hex of a fixed set of packets, one a line.

usage: micropython net_mqtt_codec.py FIRMWARE_DIR
"""

import binascii
import sys

sys.path.insert(0, sys.argv[1])
import packet

packets = [packet.remaining_length(n) for n in (0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455)]
packets += [
    packet.connect_packet("c1"),
    packet.connect_packet("node-a", False, 300, ("s/t", b'{"v":1}', 1, True), "u", "p"),
    packet.publish_packet("a/b", b"hi"),
    packet.publish_packet("a/b", b"hi", 1, False, 0x1234),
    packet.publish_packet("a/b", b"x" * 200, 1, True, 7, dup=True),
    packet.subscribe_packet(10, "checkpoint/v1/s/n/receipt", 1),
    packet.puback_packet(0xBEEF),
]
for p in packets:
    print(binascii.hexlify(p).decode())
