"""Log-bucketed latency histograms that merge exactly. Pure.

Buckets are 5 % wide: a value lands in the bucket whose upper bound is the first power of
BUCKET_GROWTH at or above it, so two histograms of the same events read in two parts add up to
the histogram of all of them, and a percentile read from buckets is at most 5 % high.
"""

from __future__ import annotations

import math

#: Width of a bucket: each bucket's upper bound is this factor above the previous one.
BUCKET_GROWTH = 1.05


def bucket_of(ms: float) -> int:
    return 0 if ms <= 1.0 else math.ceil(math.log(ms) / math.log(BUCKET_GROWTH))


def bucket_upper(index: int) -> float:
    return BUCKET_GROWTH ** index


def merge(into: dict[int, int], other: dict[int, int]) -> dict[int, int]:
    for b, n in other.items():
        into[b] = into.get(b, 0) + n
    return into


def percentile(hist: dict[int, int], count: int, q: float, maximum: float) -> float | None:
    """The q-th percentile (0-100), as its bucket's upper bound, capped at the largest value seen."""
    if not count:
        return None
    rank = max(1, math.ceil(q / 100.0 * count))
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return round(min(bucket_upper(b), maximum), 3)
    return round(maximum, 3)
