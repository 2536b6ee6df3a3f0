"""One outbox segment (outbox.py): records back to back in a file, checked by length and CRC on the way in.

A record is 11 bytes + payload: u8 0xA5, u16 payload length, u32 seq, payload, u32 CRC-32 of all before it.
`Segment` holds in RAM only a bitmap of freed (or absent) seqs and counts, never the payloads. `load()` reads
a segment back at boot: it keeps every complete record, resynchronises past bad bytes (a torn tail, a
corrupted region) and rewrites the file without them (tmp + rename).
"""

import binascii
import os
import struct

MAGIC = 0xA5
_HDR = "<BHI"
_HDR_LEN = 7
OVERHEAD = 11


def crc(b):
    return binascii.crc32(b) & 0xFFFFFFFF


def frame(seq, payload):
    rec = struct.pack(_HDR, MAGIC, len(payload), seq) + payload
    return rec + struct.pack("<I", crc(rec))


def record_at(f, off, segment_bytes):
    """(seq, payload, length) of a valid record at `off` of the open file `f`, else None."""
    f.seek(off)
    h = f.read(_HDR_LEN)
    if len(h) < _HDR_LEN or h[0] != MAGIC:
        return None
    _, n, seq = struct.unpack(_HDR, h)
    if n + OVERHEAD > segment_bytes:
        return None
    rest = f.read(n + 4)
    if len(rest) < n + 4 or struct.unpack("<I", rest[n:])[0] != crc(h + rest[:n]):
        return None
    return seq, rest[:n], n + OVERHEAD


class Segment:
    def __init__(self, first):
        self.first = first
        self.last = first - 1  # highest seq held
        self.bits = bytearray()  # bit (seq - first) set: freed or absent
        self.live = 0
        self.size = 0

    @property
    def name(self):
        return "%08x" % self.first

    def freed(self, seq):
        i = seq - self.first
        return self.bits[i >> 3] & (1 << (i & 7))

    def mark(self, seq, freed):
        i = seq - self.first
        while len(self.bits) <= i >> 3:
            self.bits.append(0)
        if freed:
            self.bits[i >> 3] |= 1 << (i & 7)
        else:
            self.bits[i >> 3] &= ~(1 << (i & 7))

    def add(self, seq, length):
        """A record of `length` bytes holding `seq` (the highest so far) is in the file."""
        for s in range(self.last + 1, seq):
            self.mark(s, True)  # a gap (lost to corruption): nothing to publish
        self.mark(seq, False)
        self.last = seq
        self.live += 1
        self.size += length

    def load(self, path, segment_bytes):
        """Read the file back: keep valid records in order, rewrite it without bad bytes. Returns the number
        of bad regions."""
        good = []
        bad = 0
        in_bad = False
        off = 0
        with open(path, "rb") as f:
            end = f.seek(0, 2)
            while off < end:
                r = record_at(f, off, segment_bytes)
                if r is None or r[0] <= self.last:
                    bad += 0 if in_bad else 1
                    in_bad = True
                    off += 1  # resynchronise: a record may start at the next byte
                    continue
                in_bad = False
                self.add(r[0], r[2])
                good.append((off, r[2]))
                off += r[2]
            if bad:
                _rewrite(f, path + ".tmp", good)
        if bad:
            os.rename(path + ".tmp", path)
        return bad


def _rewrite(f, tmp, good):
    with open(tmp, "wb") as out:
        for o, n in good:
            f.seek(o)
            out.write(f.read(n))
