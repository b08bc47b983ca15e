"""Columnar key listings: one byte arena plus numpy columns, no Python object per key."""

from dataclasses import dataclass

import numpy as np


@dataclass
class KeyColumns:
    """Keys and their metadata as columns.

    ``arena[offsets[i]:offsets[i + 1]]`` is key ``i`` (raw bytes, already url-decoded);
    ``size`` is in bytes; ``mtime`` is seconds since the Unix epoch (UTC) and ``nsec``
    its nanoseconds. Order is listing order.
    """

    arena: np.ndarray  # uint8
    offsets: np.ndarray  # int64, len n + 1, offsets[0] == 0
    size: np.ndarray  # int64
    mtime: np.ndarray  # int64
    nsec: np.ndarray  # uint32

    def __len__(self) -> int:
        return len(self.size)

    def key(self, i: int) -> bytes:
        """Key ``i`` as bytes (for messages and tests, not for hot loops)."""
        return self.arena[self.offsets[i]:self.offsets[i + 1]].tobytes()

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.arena, self.offsets, self.size, self.mtime, self.nsec))

    @classmethod
    def empty(cls) -> "KeyColumns":
        return cls(np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int64),
                   np.zeros(0, np.int64), np.zeros(0, np.uint32))

    @classmethod
    def from_keys(cls, keys, size, mtime, nsec=None) -> "KeyColumns":
        """Build columns from a sequence of ``bytes``/``str`` keys (tests, small inputs)."""
        raw = [k.encode() if isinstance(k, str) else bytes(k) for k in keys]
        lengths = np.fromiter((len(k) for k in raw), np.int64, len(raw))
        offsets = np.zeros(len(raw) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        arena = np.frombuffer(b"".join(raw), np.uint8).copy()
        n = len(raw)
        nsec = np.zeros(n, np.uint32) if nsec is None else np.asarray(nsec, np.uint32)
        return cls(arena, offsets, np.asarray(size, np.int64).reshape(n),
                   np.asarray(mtime, np.int64).reshape(n), nsec.reshape(n))

    @classmethod
    def concat(cls, parts, *, consume: bool = False) -> "KeyColumns":
        """Join page-sized parts in order into one set of columns.

        With ``consume``, each part's column is released as soon as it is copied, so the
        join never holds two copies of every column at once (parts must not be shared).
        """
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]

        bases = np.cumsum([0] + [len(p.arena) for p in parts[:-1]])
        shifted = [p.offsets[1:] + base for p, base in zip(parts, bases, strict=True)]
        columns = {"offsets": np.concatenate([parts[0].offsets[:1]] + shifted)}
        del shifted
        for name in ("arena", "size", "mtime", "nsec"):
            columns[name] = np.concatenate([getattr(p, name) for p in parts])
            if consume:
                for p in parts:
                    setattr(p, name, None)
        return cls(**columns)


class ColumnsBuilder:
    """Appends page-sized KeyColumns into growing columns.

    The columns grow in place (``ndarray.resize``: glibc's realloc moves large blocks with
    mremap, without a copy), so a listing never holds its pages and their concatenation
    at the same time.
    """

    _GROWTH = 1.5

    def __init__(self, capacity: int = 1024):
        self.n = 0
        self.nbytes = 0
        self.arena = np.zeros(capacity * 64, np.uint8)
        self.offsets = np.zeros(capacity + 1, np.int64)
        self.size = np.zeros(capacity, np.int64)
        self.mtime = np.zeros(capacity, np.int64)
        self.nsec = np.zeros(capacity, np.uint32)

    def append(self, part: KeyColumns) -> None:
        count, nbytes = len(part), len(part.arena)
        self._reserve(self.n + count, self.nbytes + nbytes)
        self.arena[self.nbytes:self.nbytes + nbytes] = part.arena
        self.offsets[self.n + 1:self.n + count + 1] = part.offsets[1:] + self.nbytes
        for name in ("size", "mtime", "nsec"):
            getattr(self, name)[self.n:self.n + count] = getattr(part, name)
        self.n += count
        self.nbytes += nbytes

    def finish(self) -> KeyColumns:
        """The columns, trimmed to their length; the builder is spent."""
        self._resize(self.n, self.nbytes)
        columns = KeyColumns(self.arena, self.offsets, self.size, self.mtime, self.nsec)
        self.arena = self.offsets = self.size = self.mtime = self.nsec = None
        return columns

    def _reserve(self, n: int, nbytes: int) -> None:
        if n > len(self.size) or nbytes > len(self.arena):
            self._resize(max(n, int(len(self.size) * self._GROWTH)),
                         max(nbytes, int(len(self.arena) * self._GROWTH)))

    def _resize(self, n: int, nbytes: int) -> None:
        self.arena.resize(nbytes, refcheck=False)
        self.offsets.resize(n + 1, refcheck=False)
        for name in ("size", "mtime", "nsec"):
            getattr(self, name).resize(n, refcheck=False)
