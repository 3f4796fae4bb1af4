"""Scoring steps PoseTrack's evaluators share: the ignore-region point test and VOC all-point AP.

numpy only, so that a scorer importing them does not load image libraries.
"""

from __future__ import annotations

import numpy as np


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Strict-interior test (shapely `Polygon.contains`) of points against one polygon.

    Args:
        points: (M, 2) float64 x, y pixels.
        polygon: (K, 2) float64 vertices; the ring closes itself.

    Returns:
        (M,) bool: inside and not on the boundary (even-odd rule, as GEOS's ray
        crossing counter). A polygon with fewer than 3 vertices contains nothing.
    """
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if len(polygon) < 3 or len(points) == 0:
        return np.zeros(len(points), bool)
    x, y = points[:, :1], points[:, 1:]
    x1, y1 = polygon[:, 0][None], polygon[:, 1][None]
    x2, y2 = np.roll(polygon[:, 0], -1)[None], np.roll(polygon[:, 1], -1)[None]
    # orientation of the point relative to each edge (> 0: left of the edge)
    orientation = (x2 - x1) * (y - y1) - (x - x1) * (y2 - y1)
    on_edge = ((orientation == 0) & (x >= np.minimum(x1, x2)) & (x <= np.maximum(x1, x2))
               & (y >= np.minimum(y1, y2)) & (y <= np.maximum(y1, y2)))
    straddles = (y1 > y) != (y2 > y)
    # a ray to the right crosses an upward edge with the point on its left, a downward one on its right
    crosses = straddles & (orientation != 0) & ((orientation > 0) == (y2 > y1))
    inside = (np.count_nonzero(crosses, axis=1) % 2) == 1
    return inside & ~on_edge.any(axis=1)


def average_precision(scores: np.ndarray, labels: np.ndarray, num_positives: float, stable: bool,
                      order: np.ndarray | None = None) -> tuple[float, float, float]:
    """(AP, precision, recall) x 100 of one joint type, poseval's computeRPC + VOCap.

    `order`: the descending ranking to use (default: numpy's unstable argsort
    reversed, or a stable descending sort with `stable`).
    """
    if len(scores) == 0:
        return 0.0, 0.0, 0.0
    if order is None:
        order = np.argsort(-scores, kind="stable") if stable else np.argsort(scores)[::-1]
    true_positives = np.cumsum(labels[order] == 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = true_positives / np.float64(num_positives)
    precision = true_positives / np.arange(1, len(scores) + 1)
    envelope = np.concatenate([[0.0], precision, [0.0]])
    envelope = np.maximum.accumulate(envelope[::-1])[::-1]
    steps = np.concatenate([[0.0], recall, [1.0]])
    changed = np.flatnonzero(steps[1:] != steps[:-1]) + 1
    ap = np.sum((steps[changed] - steps[changed - 1]) * envelope[changed])
    return float(ap * 100), float(precision[-1] * 100), float(recall[-1] * 100)
