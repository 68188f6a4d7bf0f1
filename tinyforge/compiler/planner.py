"""Static memory planner: every intermediate tensor and scratch buffer gets an offset in one
arena, chosen at build time from lifetimes (op index ranges).

Buffers may be *pinned* to another buffer at a fixed relative offset (overlapped in-place
convolutions); pinned buffers form rigid clusters that are placed as one unit. Several greedy
orders are tried (by size / size x lifetime / first use, each first-fit) and the
smallest arena wins; the result is checked for overlaps before it is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 4


@dataclass
class Buffer:
    """A block of the arena: ``size`` bytes live from op ``start`` to op ``end`` inclusive.
    ``pin`` = (index of another buffer, byte offset relative to it) fixes its position."""

    name: str
    size: int
    start: int
    end: int
    offset: int = -1
    pin: tuple[int, int] | None = None


@dataclass
class Plan:
    arena_bytes: int
    buffers: list[Buffer] = field(default_factory=list)
    strategy: str = ""

    def as_dict(self) -> dict:
        return {"arena_bytes": self.arena_bytes, "strategy": self.strategy,
                "buffers": [{"name": b.name, "size": b.size, "offset": b.offset,
                             "first_op": b.start, "last_op": b.end} for b in self.buffers]}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def clusters(buffers: list[Buffer]) -> list[list[tuple[int, int]]]:
    """Group pinned buffers: each cluster is [(buffer index, offset relative to the cluster)],
    relative offsets shifted so the lowest member starts at 0."""
    def root(i: int) -> tuple[int, int]:
        rel = 0
        while buffers[i].pin is not None:
            j, d = buffers[i].pin
            rel += d
            i = j
        return i, rel

    groups: dict[int, list[tuple[int, int]]] = {}
    for i in range(len(buffers)):
        r, rel = root(i)
        groups.setdefault(r, []).append((i, rel))
    out = []
    for members in groups.values():
        lo = min(rel for _, rel in members)
        out.append([(i, rel - lo) for i, rel in members])
    return out


def cluster_extent(buffers: list[Buffer], members: list[tuple[int, int]]) -> int:
    return max(rel + _align(buffers[i].size) for i, rel in members)


def _place(buffers: list[Buffer], cl: list[list[tuple[int, int]]], order: list[int]) -> list[int]:
    offsets = [-1] * len(buffers)
    placed: list[int] = []
    for c in order:
        members = cl[c]
        # conflicts: placed rectangles overlapping any member in time, in cluster coordinates
        cands = {0}
        busy = []
        for i, rel in members:
            b = buffers[i]
            for j in placed:
                pb = buffers[j]
                if pb.start <= b.end and b.start <= pb.end:
                    lo, hi = offsets[j], offsets[j] + _align(pb.size)
                    busy.append((lo - rel - _align(b.size), hi - rel))  # forbidden open range
                    cands.add(hi - rel)
        best = None
        for x in sorted(v for v in cands if v >= 0):
            if all(not (lo < x < hi) for lo, hi in busy):
                best = x  # lowest free position (first fit)
                break
        for i, rel in members:
            offsets[i] = best + rel
        placed.extend(i for i, _ in members)
    return offsets


def plan_memory(buffers: list[Buffer]) -> Plan:
    """Assign offsets to ``buffers`` (mutated) and return the plan with the smallest arena."""
    if not buffers:
        return Plan(arena_bytes=0, buffers=[], strategy="empty")
    cl = clusters(buffers)

    def size(c):
        return cluster_extent(buffers, cl[c])

    def life(c):
        return (max(buffers[i].end for i, _ in cl[c]) - min(buffers[i].start for i, _ in cl[c])
                + 1)

    def start(c):
        return min(buffers[i].start for i, _ in cl[c])

    idx = list(range(len(cl)))
    orders = {
        "size": sorted(idx, key=lambda c: (-size(c), start(c))),
        "size*life": sorted(idx, key=lambda c: (-size(c) * life(c), start(c))),
        "start": sorted(idx, key=lambda c: (start(c), -size(c))),
    }
    best = None
    for oname, order in orders.items():
        offs = _place(buffers, cl, order)
        total = max(o + _align(b.size) for o, b in zip(offs, buffers, strict=True))
        if best is None or total < best[0]:
            best = (total, offs, f"greedy-by-{oname}/first-fit")
    total, offs, strategy = best
    for b, o in zip(buffers, offs, strict=True):
        b.offset = o
    _check(buffers)
    return Plan(arena_bytes=total, buffers=buffers, strategy=strategy)


def _check(buffers: list[Buffer]) -> None:
    for i, a in enumerate(buffers):
        if a.pin is not None:
            j, d = a.pin
            if a.offset != buffers[j].offset + d:
                raise AssertionError(f"planner broke pin of {a.name}")
        for b in buffers[i + 1:]:
            # overlapped convolutions intentionally share bytes with their input
            if (a.pin and buffers[a.pin[0]] is b) or (b.pin and buffers[b.pin[0]] is a):
                continue
            if a.start <= b.end and b.start <= a.end and a.size and b.size and \
                    a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                raise AssertionError(f"planner overlap: {a.name} and {b.name}")
