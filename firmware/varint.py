"""LEB128 varints, as the outbox record stores its numbers (record.py). MicroPython subset.

"uv": an unsigned varint (7 bits a byte, low bits first, high bit = more follows); "sv": a signed value
zigzag-mapped to an uv ((n << 1) ^ (n >> 63)).
"""


def put(buf, n):
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def put_sv(buf, n):
    put(buf, (n << 1) if n >= 0 else ((-n << 1) - 1))


class Reader:
    def __init__(self, b):
        self.b = b
        self.i = 0

    def byte(self):
        if self.i >= len(self.b):
            raise ValueError("record: truncated")
        self.i += 1
        return self.b[self.i - 1]

    def uv(self):
        n = 0
        shift = 0
        while True:
            c = self.byte()
            n |= (c & 0x7F) << shift
            if not c & 0x80:
                return n
            shift += 7
            if shift > 70:
                raise ValueError("record: varint too long")

    def sv(self):
        n = self.uv()
        return -((n + 1) >> 1) if n & 1 else n >> 1

    def text(self):
        n = self.byte()
        if self.i + n > len(self.b):
            raise ValueError("record: truncated")
        self.i += n
        return bytes(self.b[self.i - n : self.i]).decode()
