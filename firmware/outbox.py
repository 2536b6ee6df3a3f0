"""The durable outbox: every scan is appended here before anything else happens to it, and leaves only when
the gateway's receipt names its seq (docs/design.md section 2, data integrity).

On flash (one directory):
    SSSSSSSS.seg   a segment: records appended back to back; SSSSSSSS = first seq of the segment, 8 hex digits
    SSSSSSSS.ack   seqs freed in that segment, u32 little-endian each, appended
    meta           b"OBX1", u32 seq floor, u32 dropped, crc32: replaced atomically (write meta.tmp, rename)
A record is 11 bytes + payload: u8 0xA5, u16 payload length, u32 seq, payload, u32 CRC-32 of all before it.

Power cuts: an append is durable once `append` returns (write + flush; LittleFS commits a file on sync).
A cut mid-append leaves a torn tail: `open` verifies length + CRC of every record, resynchronises past bad
bytes, rewrites the segment without them (tmp + rename), and keeps every complete record. The seq floor in
`meta` is raised before any segment is deleted, so a seq is never reused, even once every record is gone.
A lost ack entry only means a resend (the gateway stores by (site, node, seq)); a record is never lost.
When full, the oldest segment is dropped whole; its unfreed records are counted in `dropped` (persisted).
In RAM: per segment a bitmap of freed seqs (about 2 KiB for a full 1 MiB log), never the payloads.
"""

import binascii
import os
import struct

_MAGIC = 0xA5
_HDR = "<BHI"
_HDR_LEN = 7
_OVERHEAD = 11


def _crc(b):
    return binascii.crc32(b) & 0xFFFFFFFF


def _frame(seq, payload):
    rec = struct.pack(_HDR, _MAGIC, len(payload), seq) + payload
    return rec + struct.pack("<I", _crc(rec))


class _Seg:
    def __init__(self, first):
        self.first = first
        self.last = first - 1  # highest seq held
        self.bits = bytearray()  # bit (seq - first) set: freed or absent
        self.live = 0
        self.size = 0

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


class Outbox:
    def __init__(self, dirpath, segment_bytes=16384, max_bytes=1048576):
        if segment_bytes < 256 or max_bytes < 2 * segment_bytes:
            raise ValueError("outbox: need segment_bytes >= 256 and max_bytes >= 2 * segment_bytes")
        self.dir = dirpath
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self._segs = []
        self._floor = 0
        self._dropped = 0
        self._next = self._floor
        self._total = 0
        self._f = None  # append handle of the last segment
        self._sealed = False  # a write to the last segment failed: start afresh
        self._hint = None  # (seq, segment, offset after it): where pending() last stopped

    @property
    def depth(self):
        return sum([s.live for s in self._segs])

    @property
    def dropped(self):
        return self._dropped

    @property
    def next_seq(self):
        return self._next

    def _path(self, name):
        return self.dir + "/" + name

    def open(self):
        """Recover at boot. Returns {"records": unfreed, "torn": bad regions discarded, "dropped": total}."""
        try:
            os.mkdir(self.dir)
        except OSError:
            pass  # exists
        self.close()
        self._segs = []
        names = sorted(os.listdir(self.dir))
        for n in names:
            if n.endswith(".tmp"):
                os.remove(self._path(n))
        self._read_meta()
        torn = 0
        for n in names:
            if n.endswith(".seg"):
                seg = _Seg(int(n[:8], 16))
                torn += self._load(seg, self._path(n))
                self._segs.append(seg)
        self._next = self._floor
        for seg in self._segs:
            self._next = max(self._next, seg.last + 1)
        for n in names:
            if n.endswith(".ack"):
                self._load_acks(n)
        for seg in list(self._segs):
            if seg.live == 0:
                self._delete(seg)
        self._total = sum([s.size for s in self._segs])
        return {"records": self.depth, "torn": torn, "dropped": self._dropped}

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def _read_meta(self):
        self._floor = self._dropped = 0
        try:
            with open(self._path("meta"), "rb") as f:
                b = f.read()
        except OSError:
            return  # first boot
        if len(b) == 16 and b[:4] == b"OBX1" and struct.unpack("<I", b[12:])[0] == _crc(b[:12]):
            self._floor, self._dropped = struct.unpack("<II", b[4:12])

    def _write_meta(self):
        self._floor = self._next
        b = b"OBX1" + struct.pack("<II", self._floor, self._dropped)
        with open(self._path("meta.tmp"), "wb") as f:
            f.write(b + struct.pack("<I", _crc(b)))
        os.rename(self._path("meta.tmp"), self._path("meta"))

    def _record_at(self, f, off):
        """(seq, payload, length) of a valid record at `off`, else None."""
        f.seek(off)
        h = f.read(_HDR_LEN)
        if len(h) < _HDR_LEN or h[0] != _MAGIC:
            return None
        _, n, seq = struct.unpack(_HDR, h)
        if n + _OVERHEAD > self.segment_bytes:
            return None
        rest = f.read(n + 4)
        if len(rest) < n + 4 or struct.unpack("<I", rest[n:])[0] != _crc(h + rest[:n]):
            return None
        return seq, rest[:n], n + _OVERHEAD

    def _load(self, seg, path):
        """Scan a segment; keep valid records in order, rewrite it without bad bytes. Returns bad regions."""
        good = []
        bad = 0
        in_bad = False
        off = 0
        with open(path, "rb") as f:
            end = f.seek(0, 2)
            while off < end:
                r = self._record_at(f, off)
                if r is None or r[0] <= seg.last:
                    bad += 0 if in_bad else 1
                    in_bad = True
                    off += 1  # resynchronise: a record may start at the next byte
                    continue
                in_bad = False
                for s in range(seg.last + 1, r[0]):
                    seg.mark(s, True)  # a gap (lost to corruption): nothing to publish
                seg.mark(r[0], False)
                seg.last = r[0]
                seg.live += 1
                good.append((off, r[2]))
                off += r[2]
            if bad:
                with open(path + ".tmp", "wb") as out:
                    for o, n in good:
                        f.seek(o)
                        out.write(f.read(n))
        if bad:
            os.rename(path + ".tmp", path)
        seg.size = sum([n for _, n in good])
        return bad

    def _load_acks(self, name):
        segs = [s for s in self._segs if s.first == int(name[:8], 16)]
        if not segs:
            os.remove(self._path(name))  # its segment is gone
            return
        with open(self._path(name), "rb") as f:
            b = f.read()
        for i in range(0, len(b) - 3, 4):  # a torn last entry is ignored: the record is resent
            self._mark_freed(segs[0], struct.unpack_from("<I", b, i)[0])

    def _mark_freed(self, seg, seq):
        if seg.first <= seq <= seg.last and not seg.freed(seq):
            seg.mark(seq, True)
            seg.live -= 1
            return True
        return False

    def _delete(self, seg):
        if self._floor < self._next:
            self._write_meta()  # the floor first: seqs never come back
        if seg is self._segs[-1]:
            self.close()
        self._segs.remove(seg)
        self._total -= seg.size
        self._hint = None
        name = "%08x" % seg.first
        os.remove(self._path(name + ".seg"))
        try:
            os.remove(self._path(name + ".ack"))
        except OSError:
            pass  # no record of it was freed

    def append(self, payload):
        """Store one payload under the next seq; durable when this returns. Returns the seq."""
        if len(payload) + _OVERHEAD > min(self.segment_bytes, 0xFFFF):
            raise ValueError("outbox: payload of " + str(len(payload)) + " bytes does not fit a segment")
        rec = _frame(self._next, payload)
        while self._total + len(rec) > self.max_bytes:
            self._drop_oldest()
        seg = self._segs[-1] if self._segs else None
        if seg is None or seg.size + len(rec) > self.segment_bytes or (self._sealed and seg.live):
            self.close()
            seg = _Seg(self._next)
            self._segs.append(seg)
        if self._f is None:
            self._f = open(self._path("%08x.seg" % seg.first), "wb" if self._sealed else "ab")
            self._sealed = False
        try:
            self._f.write(rec)
            self._f.flush()
        except OSError:
            self.close()  # bytes of it may be on flash: never append behind them (open() skips them)
            self._sealed = True
            raise
        seg.mark(self._next, False)
        seg.last = self._next
        seg.live += 1
        seg.size += len(rec)
        self._total += len(rec)
        self._next += 1
        return seg.last

    def _drop_oldest(self):
        seg = self._segs[0]
        self._dropped += seg.live
        self._write_meta()
        self._delete(seg)

    def pending(self, limit, after=-1):
        """Up to `limit` unfreed (seq, payload) with seq > after, oldest first."""
        out = []
        for seg in self._segs:
            if len(out) >= limit:
                break
            if seg.live and seg.last > after:
                self._read_seg(seg, limit, after, out)
        return out

    def _read_seg(self, seg, limit, after, out):
        h = self._hint  # resume where the last call stopped: no re-reading of records already handed out
        off = h[2] if h is not None and h[1] is seg and h[0] == after else 0
        with open(self._path("%08x.seg" % seg.first), "rb") as f:
            while off < seg.size and len(out) < limit:
                r = self._record_at(f, off)
                if r is None:
                    raise OSError("outbox: segment %08x corrupt at %d" % (seg.first, off))
                off += r[2]
                if r[0] > after and not seg.freed(r[0]):
                    out.append((r[0], r[1]))
                    self._hint = (r[0], seg, off)

    def free(self, seqs):
        """Free the records named by a receipt (persisted); unknown or already freed seqs are ignored."""
        for seg in list(self._segs):
            done = [s for s in seqs if self._mark_freed(seg, s)]
            if not done:
                continue
            with open(self._path("%08x.ack" % seg.first), "ab") as f:
                f.write(b"".join([struct.pack("<I", s) for s in done]))
            if seg.live == 0:
                self._delete(seg)
