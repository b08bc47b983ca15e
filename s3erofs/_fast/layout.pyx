# cython: language_level=3
"""Sort directory entries, place inodes, and pack inodes and directory blocks.

The tree arrives as columns: per-inode arrays and a dentry table (parent inode, child
inode, name slice of a byte arena). Everything here is O(n) plus the per-directory
sorts, with no Python object per entry.

Placement (ours, not mkfs.erofs's allocator): the root inode comes first at byte 1152
(nid 36). Directories are visited breadth-first; each directory's children get their
inodes in sorted-name order, so `ls -l` reads neighbours. An inode never straddles a
block. A directory's or a data inode's last partial block is inlined right after the
inode when it fits in that block; otherwise it gets a plain block. Directory blocks and
file data blocks follow the metadata area.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcmp, memcpy, memset

cnp.import_array()

# file types as stored in st_mode, and erofs_fs.h values they map to
cdef enum:
    S_IFMT = 0o170000
    S_IFSOCK = 0o140000
    S_IFLNK = 0o120000
    S_IFREG = 0o100000
    S_IFBLK = 0o060000
    S_IFDIR = 0o040000
    S_IFCHR = 0o020000
    S_IFIFO = 0o010000

cdef enum:
    ISLOT = 32
    DIRENT_SIZE = 12
    INODE_COMPACT = 32
    INODE_EXTENDED = 64
    NAME_LEN_MAX = 255
    FLAT_PLAIN = 0
    FLAT_INLINE = 2
    CHUNK_BASED = 4
    ROOT_POS = 1152  # EROFS_SUPER_OFFSET + 128: the root inode follows the superblock

# data kinds (per inode, chosen by the caller)
DATA_NONE = 0  # no data: directories (sized here), devices, fifos, sockets
DATA_HOLES = 1  # meta-only regular file: chunk-based block map of holes
DATA_BYTES = 2  # real bytes: symlink targets, regular files from a local source

cdef uint64_t NULL_ADDR = 0xFFFFFFFF
cdef int CHUNK_MAX_BLKBITS = 31


# ---- name comparison and dentry sorting ----

cdef inline int name_cmp(const uint8_t *a, int64_t alen,
                         const uint8_t *b, int64_t blen) noexcept nogil:
    """strcmp order for names without NUL: unsigned bytes, a prefix sorts first."""
    cdef int64_t n = alen if alen < blen else blen
    cdef int r = memcmp(a, b, n)
    if r != 0:
        return r
    return (alen > blen) - (alen < blen)


# qsort has no context argument; these point at the arrays of the sort in progress.
# Callers hold the GIL, so two sorts never run at once.
cdef const uint8_t *_sort_arena
cdef const int64_t *_sort_off
cdef const int64_t *_sort_len
cdef const int64_t *_sort_rank


cdef int _cmp_entries(const void *pa, const void *pb) noexcept nogil:
    cdef int64_t a = (<const int64_t *>pa)[0]
    cdef int64_t b = (<const int64_t *>pb)[0]
    cdef int r = name_cmp(_sort_arena + _sort_off[a], _sort_len[a],
                          _sort_arena + _sort_off[b], _sort_len[b])
    if r != 0:
        return r
    return (_sort_rank[a] > _sort_rank[b]) - (_sort_rank[a] < _sort_rank[b])


def sort_dentries(const int64_t[::1] parent, const int64_t[::1] name_off,
                  const int64_t[::1] name_len, const uint8_t[::1] arena,
                  const int64_t[::1] rank):
    """Order of dentries by (parent, name bytes, rank).

    Listing order is nearly sorted by name within a parent, so a group is only sorted
    when a linear check finds it out of order.
    """
    cdef int64_t n = parent.shape[0]
    cdef cnp.ndarray order_arr = np.argsort(np.asarray(parent), kind="stable").astype(np.int64)
    cdef int64_t[::1] order = order_arr
    cdef int64_t start = 0, end, i, a, b
    cdef bint sorted_group
    cdef int r

    while start < n:
        end = start + 1
        while end < n and parent[order[end]] == parent[order[start]]:
            end += 1

        sorted_group = True
        for i in range(start + 1, end):
            a = order[i - 1]
            b = order[i]
            r = name_cmp(&arena[0] + name_off[a], name_len[a], &arena[0] + name_off[b], name_len[b])
            if r > 0 or (r == 0 and rank[a] > rank[b]):
                sorted_group = False
                break

        if not sorted_group:
            _sort_group(&order[start], end - start, arena, name_off, name_len, rank)
        start = end

    return order_arr


cdef void _sort_group(int64_t *items, int64_t count, const uint8_t[::1] arena,
                      const int64_t[::1] name_off, const int64_t[::1] name_len,
                      const int64_t[::1] rank) noexcept:
    global _sort_arena, _sort_off, _sort_len, _sort_rank
    _sort_arena = &arena[0]
    _sort_off = &name_off[0]
    _sort_len = &name_len[0]
    _sort_rank = &rank[0]
    qsort(items, count, sizeof(int64_t), _cmp_entries)


def find_duplicates(const int64_t[::1] order, const int64_t[::1] parent,
                    const int64_t[::1] name_off, const int64_t[::1] name_len,
                    const uint8_t[::1] arena):
    """Boolean mask over ``order``: True where an entry repeats its predecessor's name."""
    cdef int64_t n = order.shape[0], i, a, b
    cdef cnp.ndarray dup_arr = np.zeros(n, dtype=np.bool_)
    cdef uint8_t[::1] dup = dup_arr.view(np.uint8)

    for i in range(1, n):
        a = order[i - 1]
        b = order[i]
        if parent[a] == parent[b] and name_cmp(&arena[0] + name_off[a], name_len[a],
                                               &arena[0] + name_off[b], name_len[b]) == 0:
            dup[i] = 1
    return dup_arr


# ---- layout ----

cdef inline int64_t round_up(int64_t x, int64_t a) noexcept nogil:
    return (x + a - 1) // a * a


cdef inline int file_type_of(uint32_t mode) noexcept nogil:
    cdef uint32_t fmt = mode & S_IFMT
    if fmt == S_IFREG:
        return 1
    if fmt == S_IFDIR:
        return 2
    if fmt == S_IFCHR:
        return 3
    if fmt == S_IFBLK:
        return 4
    if fmt == S_IFIFO:
        return 5
    if fmt == S_IFSOCK:
        return 6
    if fmt == S_IFLNK:
        return 7
    return 0


cdef inline int chunk_blkbits_for(uint64_t size, int blkszbits) noexcept nogil:
    """Chunk size exponent so one chunk covers the file, within the format's limits."""
    cdef int bits = blkszbits
    while bits < blkszbits + CHUNK_MAX_BLKBITS and (<uint64_t>1 << bits) < size:
        bits += 1
    return bits


cdef class _DirWalk:
    """Greedy packing of one directory's entries (`.` and `..` merged in name order)."""

    cdef const uint8_t *arena
    cdef const int64_t *name_off
    cdef const int64_t *name_len
    cdef int64_t first, count, blksz
    # state of the walk
    cdef int64_t pos  # next child to emit
    cdef int dots  # 0: none emitted, 1: "." emitted, 2: both emitted

    cdef void start(self, int64_t first, int64_t count) noexcept:
        self.first = first
        self.count = count
        self.pos = 0
        self.dots = 0

    cdef int next_entry(self, int64_t *which) noexcept:
        """Advance; ``which`` = child slot, or -1 for ".", -2 for "..". 0 at the end."""
        cdef const uint8_t *dot = <const uint8_t *>b".."
        cdef int64_t k
        if self.dots < 2:
            if self.pos >= self.count:
                which[0] = -1 - self.dots
                self.dots += 1
                return 1
            k = self.first + self.pos
            if name_cmp(dot, self.dots + 1, self.arena + self.name_off[k], self.name_len[k]) < 0:
                which[0] = -1 - self.dots
                self.dots += 1
                return 1
        if self.pos >= self.count:
            return 0
        which[0] = self.first + self.pos
        self.pos += 1
        return 1

    cdef int64_t entry_len(self, int64_t which) noexcept:
        if which < 0:
            return -which
        return self.name_len[which]


def layout(dict tree, int blkszbits, int64_t epoch, uint32_t fixed_nsec, emit, tail_of):
    """Place every reachable inode and pack metadata and directory blocks.

    Packed bytes stream out through ``emit(offset, view)`` in windows of a few MiB, so
    the image is never whole in memory; only the ``head`` (the blocks up to byte 2048 or
    the first block, which hold the superblock and its checksum range) is returned for
    the caller to finish. ``tail_of(ino)`` gives the inline tail bytes of a DATA_BYTES
    inode.

    ``tree`` holds numpy columns: per inode ``mode`` (u32), ``uid``, ``gid``, ``nlink``,
    ``rdev``, ``nsec`` (u32), ``size`` (u64), ``mtime`` (i64), ``data_kind`` (u8); per
    sorted dentry ``d_parent``, ``d_child``, ``d_name_off``, ``d_name_len`` (i64) over
    ``names`` (u8). Inode 0 is the root. Returns a dict with the ``head``, per-inode
    ``nid``, ``startblk``, ``tail_pos``, ``order`` (placement order), and totals.
    """
    cdef int64_t blksz = 1 << blkszbits
    cdef const uint32_t[::1] mode = tree["mode"]
    # these may be constant columns (numpy views with stride 0), hence not [::1]
    cdef const uint32_t[:] uid = tree["uid"]
    cdef const uint32_t[:] gid = tree["gid"]
    cdef const uint32_t[:] nlink_in = tree["nlink"]
    cdef const uint32_t[:] rdev = tree["rdev"]
    cdef const uint32_t[::1] nsec = tree["nsec"]
    cdef const uint64_t[::1] size_in = tree["size"]
    cdef const int64_t[::1] mtime = tree["mtime"]
    cdef const uint8_t[::1] data_kind = tree["data_kind"]
    cdef const int64_t[::1] d_parent = tree["d_parent"]
    cdef const int64_t[::1] d_child = tree["d_child"]
    cdef const int64_t[::1] d_name_off = tree["d_name_off"]
    cdef const int64_t[::1] d_name_len = tree["d_name_len"]
    cdef const uint8_t[::1] names = tree["names"]
    cdef int64_t n = mode.shape[0]
    cdef int64_t nd = d_parent.shape[0]

    if n == 0 or (mode[0] & S_IFMT) != S_IFDIR:
        raise ValueError("inode 0 must be the root directory")

    # children of each directory: a contiguous range of the sorted dentries
    cdef cnp.ndarray first_arr = np.zeros(n, np.int64)
    cdef cnp.ndarray count_arr = np.zeros(n, np.int32)
    cdef int64_t[::1] first = first_arr
    cdef int32_t[::1] count = count_arr
    cdef int64_t i, j, k, p
    for i in range(nd):
        p = d_parent[i]
        if count[p] == 0:
            first[p] = i
        count[p] += 1

    # directory sizes and link counts
    cdef cnp.ndarray size_arr = np.array(size_in, dtype=np.uint64)
    cdef uint64_t[::1] size = size_arr
    cdef cnp.ndarray nlink_arr = np.array(nlink_in, dtype=np.uint32)
    cdef uint32_t[::1] nlink = nlink_arr
    cdef cnp.ndarray nblocks_arr = np.zeros(n, np.int32)
    cdef int32_t[::1] nblocks = nblocks_arr
    cdef _DirWalk walk = _DirWalk()
    walk.arena = &names[0] if names.shape[0] else <const uint8_t *>b""
    walk.name_off = &d_name_off[0] if nd else NULL
    walk.name_len = &d_name_len[0] if nd else NULL
    walk.blksz = blksz
    cdef int64_t which, used, blocks, elen, subdirs
    for i in range(n):
        if (mode[i] & S_IFMT) != S_IFDIR:
            continue
        walk.start(first[i], count[i])
        used = 0
        blocks = 1
        while walk.next_entry(&which):
            elen = DIRENT_SIZE + walk.entry_len(which)
            if used + elen > blksz:
                blocks += 1
                used = 0
            used += elen
        size[i] = (blocks - 1) * blksz + used
        nblocks[i] = blocks
        subdirs = 0
        for k in range(first[i], first[i] + count[i]):
            if (mode[d_child[k]] & S_IFMT) == S_IFDIR:
                subdirs += 1
        # like mkfs.erofs, a directory whose link count overflows reports 1
        nlink[i] = 2 + subdirs if 2 + subdirs <= 0xFFFFFFFF else 1

    # placement order: root, then breadth-first over directories, children in name order
    cdef cnp.ndarray order_arr = np.empty(n, np.int64)
    cdef int64_t[::1] order = order_arr
    cdef cnp.ndarray placed_arr = np.zeros(n, np.uint8)
    cdef uint8_t[::1] placed = placed_arr
    cdef cnp.ndarray parent_arr = np.zeros(n, np.int32)
    cdef int32_t[::1] parent_of = parent_arr
    cdef int64_t nplaced = 1, head = 0, c
    order[0] = 0
    placed[0] = 1
    while head < nplaced:
        p = order[head]
        head += 1
        if (mode[p] & S_IFMT) != S_IFDIR:
            continue
        for k in range(first[p], first[p] + count[p]):
            c = d_child[k]
            if (mode[c] & S_IFMT) == S_IFDIR:
                if placed[c]:
                    raise ValueError(f"directory inode {c} is linked twice")
                parent_of[c] = p
            if not placed[c]:
                placed[c] = 1
                order[nplaced] = c
                nplaced += 1

    # positions: inode size, format, inline tail, block map
    cdef cnp.ndarray nid_arr = np.zeros(n, np.uint64)
    cdef uint64_t[::1] nid = nid_arr
    cdef cnp.ndarray isize_arr = np.zeros(n, np.uint8)
    cdef uint8_t[::1] isize = isize_arr
    cdef cnp.ndarray layout_arr = np.zeros(n, np.uint8)
    cdef uint8_t[::1] dlayout = layout_arr
    cdef cnp.ndarray tail_arr = np.zeros(n, np.int32)  # bytes inline after the inode
    cdef int32_t[::1] tail = tail_arr
    cdef cnp.ndarray tailpos_arr = np.full(n, -1, np.int64)
    cdef int64_t[::1] tail_pos = tailpos_arr
    cdef cnp.ndarray nfull_arr = np.zeros(n, np.int64)  # plain data blocks
    cdef int64_t[::1] nfull = nfull_arr
    cdef cnp.ndarray chunk_arr = np.zeros(n, np.int32)  # chunk-based: block map entries
    cdef int32_t[::1] nchunks = chunk_arr
    cdef cnp.ndarray chunkbits_arr = np.zeros(n, np.uint8)
    cdef uint8_t[::1] chunkbits = chunkbits_arr
    cdef int64_t pos = ROOT_POS, ino, need, t, room, fmt
    cdef bint extended, inline_ok

    for j in range(nplaced):
        ino = order[j]
        fmt = mode[ino] & S_IFMT
        extended = (size[ino] > 0xFFFFFFFF or uid[ino] > 0xFFFF or gid[ino] > 0xFFFF
                    or nlink[ino] > 0xFFFF or mtime[ino] != epoch or nsec[ino] != fixed_nsec)
        isize[ino] = INODE_EXTENDED if extended else INODE_COMPACT
        t = 0
        need = isize[ino]

        if fmt == S_IFDIR or data_kind[ino] == DATA_BYTES:
            if fmt == S_IFDIR:
                nfull[ino] = nblocks[ino] - 1
                t = size[ino] - nfull[ino] * blksz
            else:
                nfull[ino] = size[ino] // blksz
                t = size[ino] % blksz
            dlayout[ino] = FLAT_PLAIN
            if t > 0:
                room = blksz - pos % blksz
                inline_ok = isize[ino] + t <= room
                # a fresh block wastes `room` bytes; a tail block wastes blksz - t
                if not inline_ok and isize[ino] + t <= blksz and room < blksz - t:
                    pos = round_up(pos, blksz)
                    inline_ok = True
                if inline_ok:
                    dlayout[ino] = FLAT_INLINE
                    tail[ino] = t
                    need = isize[ino] + t
                else:
                    nfull[ino] += 1
        elif data_kind[ino] == DATA_HOLES and size[ino] > 0:
            dlayout[ino] = CHUNK_BASED
            chunkbits[ino] = chunk_blkbits_for(size[ino], blkszbits)
            nchunks[ino] = <int64_t>((size[ino] - 1) >> chunkbits[ino]) + 1
            need = isize[ino] + 4 * nchunks[ino]
        else:
            dlayout[ino] = FLAT_PLAIN

        if need > blksz:
            raise ValueError(f"inode {ino} needs {need} bytes of metadata, more than a block")
        if pos % blksz + need > blksz:
            pos = round_up(pos, blksz)
        nid[ino] = <uint64_t>(pos // ISLOT)
        if tail[ino]:
            tail_pos[ino] = pos + isize[ino]
        pos += round_up(need, ISLOT)

    # data blocks: directories first, then file data, in placement order
    cdef int64_t meta_blocks = round_up(pos, blksz) // blksz
    cdef cnp.ndarray startblk_arr = np.full(n, NULL_ADDR, np.uint32)
    cdef uint32_t[::1] startblk = startblk_arr
    cdef int64_t next_blk = meta_blocks
    for j in range(nplaced):
        ino = order[j]
        if (mode[ino] & S_IFMT) == S_IFDIR and nfull[ino]:
            startblk[ino] = next_blk
            next_blk += nfull[ino]
    cdef int64_t dir_end = next_blk
    for j in range(nplaced):
        ino = order[j]
        if (mode[ino] & S_IFMT) != S_IFDIR and nfull[ino]:
            startblk[ino] = next_blk
            next_blk += nfull[ino]
    # erofs-utils 1.5's fsck reads a 12-byte xattr header after every inode, even one
    # without xattrs: keep that much image after the last inode
    if next_blk * blksz < pos + 12:
        next_blk += 1
    if next_blk > 0xFFFFFFFF:
        raise ValueError(f"image needs {next_blk} blocks, more than 32-bit block addresses allow")

    # pack inodes, block maps and directory entries
    cdef int64_t head_len = max(blksz, 2048)
    cdef cnp.ndarray head_arr = np.zeros(head_len, np.uint8)
    cdef _Stream meta = _Stream(emit, head_arr, blksz, head_len // blksz, meta_blocks)
    cdef _Stream dirs = _Stream(emit, head_arr, blksz, max(head_len // blksz, meta_blocks),
                                dir_end)
    cdef uint8_t *ip
    cdef bytes tail_bytes
    cdef int64_t ipos, m
    cdef uint32_t i_u
    cdef uint16_t i_format
    for j in range(nplaced):
        ino = order[j]
        ipos = <int64_t>nid[ino] * ISLOT
        ip = meta.at(ipos)
        i_format = (1 if isize[ino] == INODE_EXTENDED else 0) | (dlayout[ino] << 1)
        if dlayout[ino] == CHUNK_BASED:
            i_u = chunkbits[ino] - blkszbits
            for m in range(nchunks[ino]):
                _put32(ip + isize[ino] + 4 * m, <uint32_t>NULL_ADDR)
        elif (mode[ino] & S_IFMT) in (S_IFCHR, S_IFBLK):
            i_u = rdev[ino]
        elif nfull[ino]:
            i_u = <uint32_t>startblk[ino]
        elif dlayout[ino] == FLAT_INLINE:
            i_u = <uint32_t>NULL_ADDR  # no full blocks: nothing to point at
        else:
            i_u = 0
        if isize[ino] == INODE_EXTENDED:
            _put16(ip, i_format)
            _put16(ip + 4, <uint16_t>mode[ino])
            _put64(ip + 8, size[ino])
            _put32(ip + 16, i_u)
            _put32(ip + 20, <uint32_t>(j + 1))
            _put32(ip + 24, uid[ino])
            _put32(ip + 28, gid[ino])
            _put64(ip + 32, <uint64_t>mtime[ino])
            _put32(ip + 40, nsec[ino])
            _put32(ip + 44, nlink[ino])
        else:
            _put16(ip, i_format)
            _put16(ip + 4, <uint16_t>mode[ino])
            _put16(ip + 6, <uint16_t>nlink[ino])
            _put32(ip + 8, <uint32_t>size[ino])
            _put32(ip + 16, i_u)
            _put32(ip + 20, <uint32_t>(j + 1))
            _put16(ip + 24, <uint16_t>uid[ino])
            _put16(ip + 26, <uint16_t>gid[ino])

        if (mode[ino] & S_IFMT) == S_IFDIR:
            _pack_dir(walk, meta, dirs, blksz, ino, first[ino], count[ino], nblocks[ino],
                      startblk[ino], tail_pos[ino], nid, parent_of, d_child, mode)
        elif data_kind[ino] == DATA_BYTES and tail[ino]:
            tail_bytes = tail_of(ino)
            if len(tail_bytes) != tail[ino]:
                raise ValueError(f"inode {ino}: {len(tail_bytes)} tail bytes, {tail[ino]} laid out")
            memcpy(ip + isize[ino], <const uint8_t *>tail_bytes, tail[ino])
    meta.flush()
    dirs.flush()

    return {
        "head": head_arr,
        "nid": nid_arr,
        "startblk": startblk_arr,
        "tail_pos": tailpos_arr,
        "tail": tail_arr,
        "nfull": nfull_arr,
        "layout": layout_arr,
        "isize": isize_arr,
        "size": size_arr,
        "nlink": nlink_arr,
        "order": order_arr[:nplaced],
        "meta_blocks": meta_blocks,
        "dir_end": dir_end,
        "blocks": next_blk,
    }


cdef class _Stream:
    """A window of blocks over one region of the image, written out as it fills.

    Positions only move forward (placement order is position order), so a window is
    emitted once the packer reaches a block beyond it. Bytes before ``head`` blocks go to
    the head buffer, which the caller finishes (superblock, checksum) and writes last.
    """

    cdef object emit
    cdef object head_obj
    cdef object win_obj
    cdef uint8_t *head
    cdef uint8_t *win
    cdef int64_t blksz, head_blocks, window_blocks, first, touched, end

    def __init__(self, emit, cnp.ndarray head, int64_t blksz, int64_t start, int64_t end):
        self.emit = emit
        self.head_obj = head
        self.head = <uint8_t *>cnp.PyArray_DATA(head)
        self.blksz = blksz
        self.head_blocks = len(head) // blksz
        self.window_blocks = max(1, (4 << 20) // blksz)
        self.win_obj = np.zeros(self.window_blocks * blksz, np.uint8)
        self.win = <uint8_t *>cnp.PyArray_DATA(self.win_obj)
        self.first = start
        self.touched = start
        self.end = end

    cdef uint8_t *at(self, int64_t pos) except NULL:
        """Where to pack the bytes of ``pos`` (they never cross a block)."""
        cdef int64_t block = pos // self.blksz
        if block < self.head_blocks:
            return self.head + pos
        if block < self.first or block >= self.end:
            raise ValueError(f"block {block} outside the window region "
                             f"[{self.first}, {self.end})")
        if block >= self.first + self.window_blocks:
            self.flush()
            self.first = block
        if block + 1 > self.touched:
            self.touched = block + 1
        return self.win + (pos - self.first * self.blksz)

    cdef int flush(self) except -1:
        cdef int64_t nbytes = (self.touched - self.first) * self.blksz
        if nbytes > 0:
            self.emit(self.first * self.blksz, memoryview(self.win_obj)[:nbytes])
            memset(self.win, 0, nbytes)
        self.first = self.touched
        return 0


cdef int _pack_dir(_DirWalk walk, _Stream meta, _Stream dirs, int64_t blksz, int64_t ino,
                   int64_t first, int64_t count, int64_t nblocks, uint64_t startblk,
                   int64_t tail_pos, const uint64_t[::1] nid, const int32_t[::1] parent_of,
                   const int64_t[::1] d_child, const uint32_t[::1] mode) except -1:
    """Write one directory's blocks: full blocks at startblk, the last inline or plain."""
    cdef int64_t block = 0, used = 0, nent = 0, which, elen
    cdef uint8_t *dst
    # replay the walk twice per block: once to find its entries, once to write them
    walk.start(first, count)
    cdef int64_t saved_pos = 0
    cdef int saved_dots = 0
    while True:
        saved_pos = walk.pos
        saved_dots = walk.dots
        used = 0
        nent = 0
        while True:
            if not walk.next_entry(&which):
                break
            elen = DIRENT_SIZE + walk.entry_len(which)
            if used + elen > blksz:
                # step back so this entry starts the next block
                if which >= 0:
                    walk.pos -= 1
                else:
                    walk.dots -= 1
                break
            used += elen
            nent += 1
        if nent == 0:
            break
        if block == nblocks - 1 and tail_pos >= 0:
            dst = meta.at(tail_pos)
        else:
            dst = dirs.at((<int64_t>startblk + block) * blksz)
        _write_block(walk, dst, saved_pos, saved_dots, nent, ino, nid, parent_of, d_child, mode)
        block += 1
    return 0


cdef void _write_block(_DirWalk walk, uint8_t *dst, int64_t start_pos, int start_dots,
                       int64_t nent, int64_t ino, const uint64_t[::1] nid,
                       const int32_t[::1] parent_of, const int64_t[::1] d_child,
                       const uint32_t[::1] mode) noexcept:
    cdef int64_t end_pos = walk.pos
    cdef int end_dots = walk.dots
    cdef int64_t e, which, nameoff = DIRENT_SIZE * nent, elen, child
    cdef uint8_t *de
    walk.pos = start_pos
    walk.dots = start_dots
    for e in range(nent):
        walk.next_entry(&which)
        de = dst + DIRENT_SIZE * e
        elen = walk.entry_len(which)
        if which == -1:
            _put64(de, nid[ino])
            de[10] = 2
            dst[nameoff] = 0x2E
        elif which == -2:
            _put64(de, nid[parent_of[ino]])
            de[10] = 2
            dst[nameoff] = 0x2E
            dst[nameoff + 1] = 0x2E
        else:
            child = d_child[which]
            _put64(de, nid[child])
            de[10] = file_type_of(mode[child])
            memcpy(dst + nameoff, walk.arena + walk.name_off[which], elen)
        _put16(de + 8, <uint16_t>nameoff)
        nameoff += elen
    walk.pos = end_pos
    walk.dots = end_dots


cdef inline void _put16(uint8_t *p, uint16_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = v >> 8


cdef inline void _put32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = v >> 24


cdef inline void _put64(uint8_t *p, uint64_t v) noexcept nogil:
    _put32(p, <uint32_t>v)
    _put32(p + 4, <uint32_t>(v >> 32))
