"""Assignment of tracks to detections from a similarity matrix.

`greedy` is the Simple Baselines / Detect-and-Track scheme: repeatedly take the
remaining pair with the highest similarity (global best pair first, not the
detection-order greedy of MMPose). `hungarian` maximises the total similarity
with the Jonker-Volgenant solver from `lap`.
"""

from __future__ import annotations

import lap
import numpy as np

MATCHING_METHODS = ("greedy", "hungarian")


_NO_INDEX = np.zeros((0,), np.int64)
_NO_INDEX.flags.writeable = False  # shared: callers must not write into it


def _empty_matches() -> np.ndarray:
    return np.zeros((0, 2), np.int64)


def greedy_match(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Best-pair-first greedy matching.

    Equivalent to sorting all pairs by similarity and taking each pair whose
    row and column are both still free, but computed in rounds: a pair that is
    the best of its row and of its column is always taken by that procedure,
    so every round takes all such mutual-best pairs at once (the global best
    pair is one, so each round makes progress; usually one or two rounds do).

    Args:
        similarity: (R, C) float similarity, higher is better.
        threshold: pairs with similarity below it are never matched.

    Returns:
        (M, 2) int64 [row, column] pairs, each row and column at most once.
        Exact ties go to the lower index.
    """
    rows, columns = greedy_pairs(similarity, threshold)
    return np.stack([rows, columns], axis=1)


def greedy_pairs(similarity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """`greedy_match` as (M,) int64 rows and (M,) int64 columns (the tracker's form)."""
    if similarity.size == 0:
        return _NO_INDEX, _NO_INDEX
    num_rows, num_columns = similarity.shape
    if num_rows == 1 or num_columns == 1:  # one person on a side: its best pair, in three numpy calls
        flat = similarity.reshape(-1)
        best = int(flat.argmax())  # first of exact ties: the lower index, as below
        if not flat[best] >= threshold:
            return _NO_INDEX, _NO_INDEX
        best_index, zero = np.array([best], np.int64), np.zeros(1, np.int64)
        return (zero, best_index) if num_rows == 1 else (best_index, zero)
    allowed = similarity >= threshold
    remaining = int(allowed.any(axis=1).sum())  # rows that can still be matched
    if remaining == 0:
        return _NO_INDEX, _NO_INDEX
    if np.count_nonzero(allowed) == remaining and int(allowed.any(axis=0).sum()) == remaining:
        # The usual tracking frame: no row or column has two pairs above the
        # threshold, so every pair is taken (the rounds below would take them
        # all in the first, in this row order).
        return allowed.nonzero()
    # Same dtype as the input: argmax picks the same pair in float32 or float64.
    work = np.where(allowed, similarity, -np.inf)
    row_index = np.arange(num_rows)
    matched_rows, matched_columns = [], []
    num_matched = 0
    while remaining:
        best_column = work.argmax(axis=1)
        best_row = work.argmax(axis=0)
        mutual = best_row[best_column] == row_index
        mutual &= work[row_index, best_column] > -np.inf
        rows = mutual.nonzero()[0]
        if len(rows) == 0:
            break
        columns = best_column[rows]
        matched_rows.append(rows)
        matched_columns.append(columns)
        remaining -= len(rows)
        num_matched += len(rows)
        if remaining == 0 or num_matched == num_columns:
            break
        work[rows, :] = -np.inf
        work[:, columns] = -np.inf
    if len(matched_rows) == 1:
        return matched_rows[0], matched_columns[0]
    if not matched_rows:
        return _NO_INDEX, _NO_INDEX
    return np.concatenate(matched_rows), np.concatenate(matched_columns)


def hungarian_match(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Maximum-total-similarity matching among pairs >= threshold (lap.lapjv).

    Returns (M, 2) int64 [row, column] pairs sorted by row.
    """
    if similarity.size == 0:
        return _empty_matches()

    cost = 1.0 - similarity.astype(np.float64)
    # Pairs below the threshold must never be taken: make them dearer than
    # leaving both sides unmatched (cost_limit), then filter exactly.
    cost_limit = 1.0 - threshold
    cost[similarity < threshold] = cost_limit + 1.0
    _, row_to_column, _ = lap.lapjv(cost, extend_cost=True, cost_limit=cost_limit + 1e-9)
    rows = np.nonzero(row_to_column >= 0)[0]
    columns = row_to_column[rows]
    keep = similarity[rows, columns] >= threshold
    return np.stack([rows[keep], columns[keep]], axis=1).astype(np.int64).reshape(-1, 2)


def match_pairs(similarity: np.ndarray, threshold: float, method: str = "greedy") -> tuple[np.ndarray, np.ndarray]:
    """`match` as (M,) int64 rows and (M,) int64 columns."""
    if method == "greedy":
        return greedy_pairs(similarity, threshold)
    pairs = match(similarity, threshold, method)
    return pairs[:, 0], pairs[:, 1]


def match(similarity: np.ndarray, threshold: float, method: str = "greedy") -> np.ndarray:
    """Dispatch to `greedy_match` or `hungarian_match`; returns (M, 2) int64 pairs."""
    if method == "greedy":
        return greedy_match(similarity, threshold)
    if method == "hungarian":
        return hungarian_match(similarity, threshold)
    raise ValueError(f"matching method must be one of {MATCHING_METHODS}, got {method!r}")
