"""Power cut at every byte offset of an outbox append, run on the real MicroPython (and on CPython).

usage: micropython -X heapsize=112k outbox_powercut.py FIRMWARE_DIR WORK_DIR
Prints one JSON line {"cases": n, "failures": [...]} and exits 1 on any failure.

A cut mid-append is simulated by restoring the files as they were before the append and then writing only the
first k bytes of what the append wrote (k = 0 .. all), optionally followed by garbage (flash that was being
programmed). Each state is reopened and checked: every record written before is there with its payload, the
torn one is gone (or fully there when k = all), the seq counter is past every seq that could have been
published, and a record appended after recovery survives the next boot.
"""

import json
import os
import sys

sys.path.insert(0, sys.argv[1])
import outbox

WORK = sys.argv[2]
SEG = 512
MAX = 4 * SEG
failures = []
cases = [0]
_rng = [12345]


def rand_bytes(n):
    out = bytearray()
    for _ in range(n):
        _rng[0] = (_rng[0] * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((_rng[0] >> 16) & 0xFF)
    return bytes(out)


def clear(d):
    try:
        names = os.listdir(d)
    except OSError:
        os.mkdir(d)
        return
    for n in names:
        os.remove(d + "/" + n)


def snapshot(d):
    snap = {}
    for n in os.listdir(d):
        with open(d + "/" + n, "rb") as f:
            snap[n] = f.read()
    return snap


def restore(d, snap):
    clear(d)
    for n in snap:
        with open(d + "/" + n, "wb") as f:
            f.write(snap[n])


def check(what, cond, detail=""):
    if not cond and len(failures) < 20:
        failures.append(what + " " + str(detail))


def payload(i):
    return b"scan-%d-" % i + bytes([i & 0xFF]) * (30 + i % 7)


def build(n_records, freed):
    """An outbox in WORK/base with n records, `freed` of them receipted. Returns (box, expected dict)."""
    base = WORK + "/base"
    clear(base)
    box = outbox.Outbox(base, segment_bytes=SEG, max_bytes=MAX)
    box.open()
    expected = {}
    for i in range(n_records):
        expected[box.append(payload(i))] = payload(i)
    box.free(freed)
    for s in freed:
        expected.pop(s, None)
    return box, expected


def reopen(d):
    box = outbox.Outbox(d, segment_bytes=SEG, max_bytes=MAX)
    return box, box.open()


def verify(label, k, full, expected, new_seq, garbage):
    cut = WORK + "/cut"
    box, stats = reopen(cut)
    complete = k == full
    want = dict(expected)
    if complete:
        want[new_seq] = payload(new_seq)
    got = dict(box.pending(10000))
    where = label + " k=" + str(k) + "/" + str(full) + " garbage=" + str(garbage)
    check(where + " records", got == want, (sorted(got), sorted(want)))
    torn_expected = 1 if (0 < k < full) or garbage else 0
    check(where + " torn", stats["torn"] == torn_expected, stats)
    check(where + " next_seq", box.next_seq == (new_seq + 1 if complete else new_seq), box.next_seq)
    after = box.append(b"after-recovery")
    box.close()
    box, stats = reopen(cut)
    want[after] = b"after-recovery"
    check(where + " second boot", dict(box.pending(10000)) == want and stats["torn"] == 0, stats)
    box.close()
    cases[0] += 1


def cut_every_offset(label, n_records, freed):
    box, expected = build(n_records, freed)
    before = snapshot(WORK + "/base")
    new_seq = box.append(payload(n_records))
    box.close()
    after = snapshot(WORK + "/base")
    changed = [n for n in after if after[n] != before.get(n)]
    check(label + " one file changed", len(changed) == 1, changed)
    name = changed[0]
    check(label + " starts a segment", (name not in before) == (label != "mid segment"), name)
    old = before.get(name, b"")
    full = len(after[name]) - len(old)
    for k in range(full + 1):
        for garbage in (0, 5) if k < full else (0, 3, 40):
            state = dict(before)
            state[name] = old + after[name][len(old) : len(old) + k] + rand_bytes(garbage)
            restore(WORK + "/cut", state)
            verify(label, k, full, expected, new_seq, garbage)


def cut_ack_write():
    """A receipt's ack entry torn at every byte: the record stays (resent later) or is freed; nothing else."""
    box, expected = build(6, [0])
    box.close()
    before = snapshot(WORK + "/base")
    box, _ = reopen(WORK + "/base")
    box.free([3])
    box.close()
    after = snapshot(WORK + "/base")
    for k in range(4):
        state = dict(before)
        state["00000000.ack"] = after["00000000.ack"][: len(before["00000000.ack"]) + k]
        restore(WORK + "/cut", state)
        box, stats = reopen(WORK + "/cut")
        check("ack k=" + str(k), dict(box.pending(100)) == expected and stats["torn"] == 0, stats)
        box.close()
        cases[0] += 1


def seq_after_all_freed():
    """Every record receipted and its segment deleted: after a reboot the seq counter still moves on."""
    box, _ = build(4, [0, 1, 2, 3])
    box.close()
    segs = [n for n in os.listdir(WORK + "/base") if n.endswith(".seg")]
    box, stats = reopen(WORK + "/base")
    check("all freed: segments deleted", segs == [], segs)
    check("all freed: seq not reused", box.next_seq == 4 and stats["records"] == 0, (box.next_seq, stats))
    box.close()
    cases[0] += 1


def main():
    try:  # noqa: SIM105 - no contextlib on MicroPython
        os.mkdir(WORK)
    except OSError:
        pass  # exists
    cut_every_offset("first record", 0, [])
    cut_every_offset("mid segment", 5, [0, 2])
    cut_every_offset("new segment", 10, [1])  # 10 records fill the first 512-byte segment
    cut_every_offset("all freed", 4, [0, 1, 2, 3])
    cut_ack_write()
    seq_after_all_freed()
    print(json.dumps({"cases": cases[0], "failures": failures}))
    sys.exit(1 if failures else 0)


main()
