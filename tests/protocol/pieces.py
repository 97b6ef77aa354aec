"""Splitting a byte stream the way a socket might deliver it, for the "split at arbitrary
points" parser tests (hypothesis chooses the cut points)."""

from __future__ import annotations


def pieces(data, cuts):
    """Yield ``data`` as consecutive slices ending at each of ``cuts`` (sorted, duplicates
    dropped) and finally at the end of ``data``; joined, the slices are ``data``. A cut at or
    beyond the end yields an empty slice."""
    pos = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        yield data[pos:cut]
        pos = cut
