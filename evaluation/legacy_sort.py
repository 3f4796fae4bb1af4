"""numpy 1.x's default argsort, step for step, so that tied scores come out in the order old evaluators saw.

Evaluators written for numpy < 1.24 (the PoseTrack21 kit cannot run on later
versions) rank predictions with `np.argsort(scores)[::-1]`, numpy's unstable
default sort. Where scores tie with different labels (predictions without
scores, scores rounded to a few decimals, integer scores) AP depends on the
order the sort leaves the ties in, and numpy 2 on x86 sorts with a different
algorithm (x86-simd-sort), so it gives other numbers. `argsort_numpy1`
replays numpy 1.22/1.23's `aquicksort` (introsort: median-of-three quicksort,
insertion sort below 16 elements, heapsort past a depth of 2 log2 n) in plain
Python. It runs at about a microsecond per element and comparison level, so
`tie_order_matters` lets callers use it only where it changes the result.
"""

from __future__ import annotations

import numpy as np

_SMALL_QUICKSORT = 15  # numpy's SMALL_QUICKSORT: partitions of <= 16 elements go to insertion sort


def tie_order_matters(scores: np.ndarray, labels: np.ndarray) -> bool:
    """True when some equal scores carry different labels, so the order of ties changes a ranking metric."""
    if len(scores) < 2:
        return False
    order = np.lexsort((labels, scores))
    same_score = scores[order][1:] == scores[order][:-1]
    nan_pair = np.isnan(scores[order][1:]) & np.isnan(scores[order][:-1])
    return bool(((same_score | nan_pair) & (labels[order][1:] != labels[order][:-1])).any())


def argsort_numpy1(values: np.ndarray) -> np.ndarray:
    """`np.argsort(values)` exactly as numpy 1.22/1.23 returns it (1-D float or integer values; NaN last)."""
    # Dense ranks compare exactly as numpy's `less` on the values (NaN equal to NaN and above everything).
    keys = np.unique(np.asarray(values).ravel(), return_inverse=True)[1].ravel().tolist()
    n = len(keys)
    order = list(range(n))
    if n < 2:
        return np.asarray(order, np.intp)
    stack: list[tuple[int, int, int]] = []
    low, high = 0, n - 1
    depth = 2 * (n.bit_length() - 1)
    while True:
        if depth < 0:
            _heapsort(keys, order, low, high)
        else:
            while high - low > _SMALL_QUICKSORT:
                middle = low + ((high - low) >> 1)
                if keys[order[middle]] < keys[order[low]]:
                    order[middle], order[low] = order[low], order[middle]
                if keys[order[high]] < keys[order[middle]]:
                    order[high], order[middle] = order[middle], order[high]
                if keys[order[middle]] < keys[order[low]]:
                    order[middle], order[low] = order[low], order[middle]
                pivot = keys[order[middle]]
                i, j = low, high - 1
                order[middle], order[j] = order[j], order[middle]
                while True:
                    i += 1
                    while keys[order[i]] < pivot:
                        i += 1
                    j -= 1
                    while pivot < keys[order[j]]:
                        j -= 1
                    if i >= j:
                        break
                    order[i], order[j] = order[j], order[i]
                order[i], order[high - 1] = order[high - 1], order[i]
                depth -= 1
                # the larger side waits on the stack, the smaller is sorted next
                if i - low < high - i:
                    stack.append((i + 1, high, depth))
                    high = i - 1
                else:
                    stack.append((low, i - 1, depth))
                    low = i + 1
            for i in range(low + 1, high + 1):
                item = order[i]
                key = keys[item]
                j = i
                while j > low and key < keys[order[j - 1]]:
                    order[j] = order[j - 1]
                    j -= 1
                order[j] = item
        if not stack:
            break
        low, high, depth = stack.pop()
    return np.asarray(order, np.intp)


def _heapsort(keys: list, order: list, low: int, high: int) -> None:
    """numpy's aheapsort on order[low..high] (1-based heap over that slice)."""
    n = high - low + 1
    base = low - 1

    def sift(tmp: int, i: int, size: int) -> None:
        j = 2 * i
        while j <= size:
            if j < size and keys[order[base + j]] < keys[order[base + j + 1]]:
                j += 1
            if keys[tmp] < keys[order[base + j]]:
                order[base + i] = order[base + j]
                i = j
                j += j
            else:
                break
        order[base + i] = tmp

    for start in range(n >> 1, 0, -1):
        sift(order[base + start], start, n)
    while n > 1:
        tmp = order[base + n]
        order[base + n] = order[base + 1]
        n -= 1
        sift(tmp, 1, n)
