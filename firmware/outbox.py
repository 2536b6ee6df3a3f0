"""The durable outbox: every scan is appended here before anything else happens to it, and leaves only when
the gateway's receipt names its seq (docs/design.md section 2, data integrity).

On flash (one directory):
    SSSSSSSS.seg   a segment: records appended back to back; SSSSSSSS = first seq of the segment, 8 hex digits
    SSSSSSSS.ack   seqs freed in that segment, u32 little-endian each, appended
    meta           b"OBX1", u32 seq floor, u32 dropped, crc32: replaced atomically (write meta.tmp, rename)
A record is 11 bytes + payload (segment.py: length, seq, payload, CRC-32).

Power cuts: an append is durable once `append` returns (write + flush; LittleFS commits a file on sync).
A cut mid-append leaves a torn tail: `open` verifies length + CRC of every record, resynchronises past bad
bytes, rewrites the segment without them (tmp + rename; segment.py), and keeps every complete record. The
seq floor in `meta` is raised before any segment is deleted, so a seq is never reused, even once every record is gone.
A lost ack entry only means a resend (the gateway stores by (site, node, seq)); a record is never lost.
When full, the oldest segment is dropped whole; its unfreed records are counted in `dropped` (persisted).
In RAM: per segment a bitmap of freed seqs (about 2 KiB for a full 1 MiB log), never the payloads.
"""

import os
import struct

from segment import OVERHEAD, Segment, crc, frame, record_at


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
        names = sorted(os.listdir(self.dir))
        for n in names:
            if n.endswith(".tmp"):
                os.remove(self._path(n))
        self._read_meta()
        torn = self._load_segments([n for n in names if n.endswith(".seg")])
        for n in names:
            if n.endswith(".ack"):
                self._load_acks(n)
        for seg in list(self._segs):
            if seg.live == 0:
                self._delete(seg)
        self._total = sum([s.size for s in self._segs])
        return {"records": self.depth, "torn": torn, "dropped": self._dropped}

    def _load_segments(self, names):
        """Read every segment back (segment.py); the next seq follows the highest held. Returns torn regions."""
        self._segs = []
        torn = 0
        for n in names:
            seg = Segment(int(n[:8], 16))
            torn += seg.load(self._path(n), self.segment_bytes)
            self._segs.append(seg)
        self._next = self._floor
        for seg in self._segs:
            self._next = max(self._next, seg.last + 1)
        return torn

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
        if len(b) == 16 and b[:4] == b"OBX1" and struct.unpack("<I", b[12:])[0] == crc(b[:12]):
            self._floor, self._dropped = struct.unpack("<II", b[4:12])

    def _write_meta(self):
        self._floor = self._next
        b = b"OBX1" + struct.pack("<II", self._floor, self._dropped)
        with open(self._path("meta.tmp"), "wb") as f:
            f.write(b + struct.pack("<I", crc(b)))
        os.rename(self._path("meta.tmp"), self._path("meta"))

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
        name = seg.name
        os.remove(self._path(name + ".seg"))
        try:
            os.remove(self._path(name + ".ack"))
        except OSError:
            pass  # no record of it was freed

    def append(self, payload):
        """Store one payload under the next seq; durable when this returns. Returns the seq."""
        if len(payload) + OVERHEAD > min(self.segment_bytes, 0xFFFF):
            raise ValueError("outbox: payload of " + str(len(payload)) + " bytes does not fit a segment")
        rec = frame(self._next, payload)
        while self._total + len(rec) > self.max_bytes:
            self._drop_oldest()
        seg = self._segs[-1] if self._segs else None
        if seg is None or seg.size + len(rec) > self.segment_bytes or (self._sealed and seg.live):
            self.close()
            seg = Segment(self._next)
            self._segs.append(seg)
        if self._f is None:
            self._f = open(self._path(seg.name + ".seg"), "wb" if self._sealed else "ab")
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
        with open(self._path(seg.name + ".seg"), "rb") as f:
            while off < seg.size and len(out) < limit:
                r = record_at(f, off, self.segment_bytes)
                if r is None:
                    raise OSError("outbox: segment %08x corrupt at %d" % (seg.first, off))
                off += r[2]
                if r[0] > after and not seg.freed(r[0]):
                    out.append((r[0], r[1]))
                    self._hint = (r[0], seg, off)

    def free(self, seqs):
        """Free the records named by a receipt (persisted); unknown or already freed seqs are ignored. Returns the
        seqs freed."""
        freed = []
        for seg in list(self._segs):
            done = [s for s in seqs if self._mark_freed(seg, s)]
            if not done:
                continue
            freed += done
            with open(self._path(seg.name + ".ack"), "ab") as f:
                f.write(b"".join([struct.pack("<I", s) for s in done]))
            if seg.live == 0:
                self._delete(seg)
        return freed
