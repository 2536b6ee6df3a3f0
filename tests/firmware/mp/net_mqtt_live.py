"""The firmware MQTT client against a real Mosquitto, run on MicroPython (and on CPython).

usage: micropython -X heapsize=112k net_mqtt_live.py FIRMWARE_DIR PORT CLOSED_PORT TOPIC_ROOT
Prints one JSON line of findings; the pytest side asserts on them.
"""

import json
import sys

sys.path.insert(0, sys.argv[1])
import asyncio

import clock as clockmod
import mqtt

PORT = int(sys.argv[2])
CLOSED = int(sys.argv[3])
ROOT = sys.argv[4]


async def wait_until(clock, cond, ms):
    t0 = clock.ticks_ms()
    while not cond() and clock.ticks_diff(clock.ticks_ms(), t0) < ms:
        await clock.sleep_ms(10)
    return cond()


async def main():
    clock = clockmod.Clock()
    out = {}
    refused = mqtt.Client(clock, "refused", "127.0.0.1", CLOSED, timeout_ms=3000)
    try:
        await refused.connect()
        out["closed_port"] = "connected?!"
    except OSError as e:
        out["closed_port"] = "OSError " + str(e.args[0] if e.args else "")
    got = []
    downs = []
    will = (ROOT + "/status", b'{"v":1,"state":"offline"}', 1, True)
    c = mqtt.Client(clock, "mp-live", "127.0.0.1", PORT, keepalive_s=1, will=will, timeout_ms=3000)
    c.kw["on_message"] = lambda t, p, r: got.append([t, p.decode(), r])
    c.kw["on_down"] = downs.append
    out["session_present"] = await c.connect()
    out["granted"] = await c.subscribe(ROOT + "/in/#", 1)
    pid = await c.publish(ROOT + "/in/q1", b"hello-qos1", qos=1)
    out["pid"] = pid
    out["inflight_after_publish"] = pid in c.inflight
    await c.publish(ROOT + "/in/q0", b"hello-qos0", qos=0)
    await c.publish(ROOT + "/in/big", b"x" * 3000, qos=1)
    out["acked"] = await c.wait_acked(3000)
    out["received"] = await wait_until(clock, lambda: len(got) >= 3, 3000)
    out["messages"] = [[g[0], g[1][:12], g[2]] for g in got]
    out["kept_alive"] = await wait_until(clock, lambda: c.pings >= 3, 5000) and c.connected
    out["downs"] = downs
    await c.disconnect()
    out["connected_after_disconnect"] = c.connected
    print(json.dumps(out))


asyncio.run(main())
