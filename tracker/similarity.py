"""Pairwise similarity between poses: vectorised OKS and box IoU matrices.

All functions work on whole sets of poses at once (no Python loop over pairs).
At tens of people a numpy call's fixed overhead (about a microsecond), not
its arithmetic, is what a tracker frame pays for, so the tracker prepares each
pose set once (`PoseSet`) and calls `similarity_between` / `oks_between`;
`pose_similarity` and `oks_matrix` are the same computations on plain arrays.
Coordinates are frame pixels; boxes are xyxy float32.
"""

from __future__ import annotations

import numpy as np

# COCO per-keypoint OKS sigmas (pycocotools / official HRNet), in COCO joint order:
# nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left before right).
COCO_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89],
    dtype=np.float32,
) / 10.0

SIMILARITY_KINDS = ("oks", "iou", "mix")

# Finite stand-in for "no confident keypoint" extents (finite, so no inf - inf).
_FAR_PX = np.float32(1.0e9)
# Lowest OKS exponent evaluated: exp(-87) = 1.6e-38 is the smallest normal float32 result.
_EXPONENT_FLOOR = np.float32(-87.0)


def boxes_from_keypoints(keypoints: np.ndarray, keypoint_threshold: float) -> np.ndarray:
    """Extent of the confident keypoints of each pose.

    Args:
        keypoints: (N, K, 3) float32 [x, y, confidence], frame pixels.
        keypoint_threshold: keypoints with confidence >= this span the box; a
            pose with fewer than 2 such keypoints uses all its keypoints.

    Returns:
        (N, 4) float32 xyxy boxes in frame pixels.
    """
    n = len(keypoints)
    if n == 0:
        return np.zeros((0, 4), np.float32)
    xy = keypoints[..., :2]
    confident = keypoints[..., 2] >= keypoint_threshold
    confident[confident.sum(axis=1) < 2] = True
    mask = confident[..., None]
    low = np.where(mask, xy, np.inf).min(axis=1)
    high = np.where(mask, xy, -np.inf).max(axis=1)
    return np.concatenate([low, high], axis=1).astype(np.float32)


def box_areas(boxes: np.ndarray, min_area_px2: float = 1.0) -> np.ndarray:
    """(N,) float32 areas of xyxy boxes, at least `min_area_px2` (OKS divides by it)."""
    size = boxes[:, 2:] - boxes[:, :2]  # (N, 2) width, height
    return np.maximum(size[:, 0] * size[:, 1], min_area_px2).astype(np.float32, copy=False)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(A, B) float32 intersection over union of xyxy boxes (A, 4) and (B, 4)."""
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros((len(boxes_a), len(boxes_b)), np.float32)
    a = boxes_a[:, None, :]
    b = boxes_b[None, :, :]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = width * height
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    union = area_a[:, None] + area_b[None, :] - intersection
    return (intersection / np.maximum(union, 1e-9)).astype(np.float32)


# Bit weights of keypoints 0..63, for the confident-keypoint bit masks of `PoseSet`.
_KEYPOINT_BITS = np.left_shift(np.uint64(1), np.arange(64, dtype=np.uint64))
# Rows of `PoseSet.signed`: x, y, then y and x again (negated).
_XYYX = np.array([0, 1, 1, 0])


class PoseSet:
    """Arrays derived from N poses that several steps of a frame need, each computed once.

    A tracker frame compares, pairs and measures the same detections and
    predictions several times; at tens of people numpy's per-call overhead, not
    arithmetic, is the cost, so the derived arrays are made once and shared.

    signed: (N, 4, K) float32 px, per pose the rows x, y, -y, -x. One min over
        the keypoints then gives a pose's whole extent (low x, low y, -high y,
        -high x), and the four gaps between two extents are plain differences.
    xy: (N, 2, K) view of its first two rows. Sums over keypoints run along
        the contiguous last axis, as over an (N, K) array (same summation
        order, so results match the plain formulas to the bit), and `take`
        along the first axis gathers poses cheaply.
    confident: (N, K) bool, keypoint confidence >= the threshold.
    bits (lazy): (N,) uint64 `confident` as bit masks (None when K > 64), so the
        keypoints two poses share are one AND and a popcount.
    extent() (lazy): (4, N) float32 rows low x, low y, -high y, -high x of the
        confident keypoints; a pose with none gets +_FAR_PX everywhere, an
        inverted box that passes no gate.
    """

    __slots__ = ("signed", "xy", "confident", "_bits", "_counts", "_extent")

    def __init__(self, signed: np.ndarray, confident: np.ndarray) -> None:
        self.signed = signed
        self.xy = signed[:, :2]
        self.confident = confident
        self._bits = self._counts = self._extent = None

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray, keypoint_threshold: float) -> "PoseSet":
        """From (N, K, 3) [x, y, confidence] px."""
        signed = keypoints.transpose(0, 2, 1).take(_XYYX, axis=1)
        signed[:, 2:] *= -1
        return cls(signed, keypoints[..., 2] >= keypoint_threshold)

    def __len__(self) -> int:
        return len(self.signed)

    def shifted(self, shift: np.ndarray) -> "PoseSet":
        """The poses moved by `shift`: (N, 2) per pose or (2,) for all, px."""
        signed_shift = np.concatenate([shift, -shift[..., ::-1]], axis=-1)
        moved = PoseSet(self.signed + signed_shift[..., None], self.confident)
        moved._bits, moved._counts = self._bits, self._counts  # same confident keypoints
        return moved

    def take(self, index: np.ndarray) -> "PoseSet":
        """The poses at (M,) int `index`."""
        return PoseSet(self.signed.take(index, axis=0), self.confident.take(index, axis=0))

    @property
    def bits(self) -> np.ndarray | None:
        if self._bits is None and self.confident.shape[1] <= 64:
            # An integer matrix product (no BLAS): one call instead of a multiply and a sum.
            self._bits = self.confident @ _KEYPOINT_BITS[: self.confident.shape[1]]
        return self._bits

    def counts(self) -> np.ndarray:
        """(N,) number of confident keypoints per pose."""
        if self._counts is None:
            bits = self.bits
            self._counts = self.confident.sum(axis=1) if bits is None else np.bitwise_count(bits)
        return self._counts

    def shared(self, other: "PoseSet", rows: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints confident in both poses of (M,) pairs (self[rows], other[columns]):
        (M, K) bool mask and (M,) count."""
        both = self.confident.take(rows, axis=0)
        both &= other.confident.take(columns, axis=0)
        if self.bits is None:
            return both, both.sum(axis=1)
        return both, np.bitwise_count(self.bits.take(rows) & other.bits.take(columns))

    def extent(self) -> np.ndarray:
        if self._extent is None:
            masked = np.where(self.confident[:, None, :], self.signed, _FAR_PX)
            # numpy reduces a short last axis row by row (tens of ns a row): min
            # over the first axis of a keypoint-major copy is a few vector ops.
            self._extent = np.ascontiguousarray(masked.transpose(2, 1, 0)).min(axis=0)
        return self._extent


def oks_exponent_factors(sigmas: np.ndarray) -> np.ndarray:
    """(K,) float32 -1 / (2 (2 sigma)^2): OKS = mean exp(d^2 * factor / s^2) (the sign folded in)."""
    sigmas = np.asarray(sigmas, np.float32)
    return -(1.0 / (8.0 * sigmas * sigmas)).astype(np.float32)


def _paired_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(P,) IoU of row-aligned box pairs (P, 4) and (P, 4)."""
    width = np.clip(np.minimum(boxes_a[:, 2], boxes_b[:, 2]) - np.maximum(boxes_a[:, 0], boxes_b[:, 0]), 0, None)
    height = np.clip(np.minimum(boxes_a[:, 3], boxes_b[:, 3]) - np.maximum(boxes_a[:, 1], boxes_b[:, 1]), 0, None)
    intersection = width * height
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    return intersection / np.maximum(area_a + area_b - intersection, 1e-9)


def oks_matrix(
    keypoints_a: np.ndarray,
    keypoints_b: np.ndarray,
    areas_a: np.ndarray,
    areas_b: np.ndarray,
    sigmas: np.ndarray = COCO_SIGMAS,
    keypoint_threshold: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """Object Keypoint Similarity of every pose in A with every pose in B.

    OKS = mean over the keypoints confident in both poses of
    exp(-d^2 / (2 * s^2 * (2 sigma_k)^2)), with s^2 the mean of the two box
    areas (the COCO formula, with the box area as the scale as MMPose does).

    Only pairs whose confident-keypoint extents come within 1.2 s of each other
    are evaluated: beyond that every keypoint distance exceeds 1.2 s and OKS is
    below 1e-6 even for the widest COCO sigma, so it is set to 0. The work is
    O(A * B) for the gate plus O(pairs * K), all vectorised.

    Args:
        keypoints_a: (A, K, 3) float32 [x, y, confidence], frame pixels.
        keypoints_b: (B, K, 3) float32, same layout.
        areas_a: (A,) float32 scale areas in px^2 (usually box areas).
        areas_b: (B,) float32.
        sigmas: (K,) per-keypoint sigmas (COCO by default).
        keypoint_threshold: keypoints with confidence below it are left out.

    Returns:
        oks: (A, B) float32 in [0, 1]; 0 where no keypoint is shared.
        shared: (A, B) int32 number of keypoints confident in both poses.
    """
    a = PoseSet.from_keypoints(np.asarray(keypoints_a), keypoint_threshold)
    b = PoseSet.from_keypoints(np.asarray(keypoints_b), keypoint_threshold)
    shared = shared_counts(a, b)
    oks = oks_between(a, b, np.asarray(areas_a, np.float32), np.asarray(areas_b, np.float32),
                      oks_exponent_factors(sigmas), shared)
    return oks, shared


def shared_counts(a: PoseSet, b: PoseSet) -> np.ndarray:
    """(A, B) int32 number of keypoints confident in both poses.

    Popcount of AND-ed bit masks rather than a float matrix product: BLAS
    threads make a tiny matmul cost milliseconds on a busy machine.
    """
    bits_a, bits_b = a.bits, b.bits
    if bits_a is None:
        return (a.confident[:, None, :] & b.confident[None, :, :]).sum(axis=2, dtype=np.int32)
    return np.bitwise_count(bits_a[:, None] & bits_b[None, :]).astype(np.int32)


def surely_share(a: PoseSet, b: PoseSet, min_shared_keypoints: int) -> bool:
    """True when every pair (a_i, b_j) shares at least `min_shared_keypoints`
    confident keypoints because each pose has so many that any two sets
    overlap that much: then neither the shared-keypoint gate of OKS nor the
    IoU fallback can apply, and the (A, B) count matrix need not be built."""
    if len(a) == 0 or len(b) == 0:
        return True
    num_keypoints = a.confident.shape[1]
    return int(a.counts().min()) + int(b.counts().min()) - num_keypoints >= min_shared_keypoints


def oks_between(a: PoseSet, b: PoseSet, areas_a: np.ndarray, areas_b: np.ndarray, exponent_factors: np.ndarray,
                shared: np.ndarray | None) -> np.ndarray:
    """`oks_matrix` on prepared pose sets: (A, B) float32 OKS.

    areas_a, areas_b: (A,), (B,) float32 px^2; exponent_factors from
    `oks_exponent_factors`; shared: from `shared_counts` (None: every pair
    shares a keypoint).
    """
    num_a, num_b = len(a), len(b)
    oks = np.zeros((num_a, num_b), np.float32)
    if num_a == 0 or num_b == 0:
        return oks
    scale = np.add.outer(areas_a, areas_b)
    scale *= 0.5
    reach = np.sqrt(scale)
    reach *= 1.2
    # The four (A, B) gaps between the extents: low x_a - high x_b, low y_a - high y_b,
    # low y_b - high y_a, low x_b - high x_a; a pair is near when all are below the reach.
    # One outer subtraction each (a broadcast (A, B, 4) array reduces slowly).
    extent_a, high_and_negated_low_b = a.extent(), -b.extent()[::-1]
    gap = [np.subtract.outer(extent_a[i], high_and_negated_low_b[i]) for i in range(4)]
    near = np.maximum(np.maximum(gap[0], gap[1], out=gap[0]), np.maximum(gap[2], gap[3], out=gap[2]),
                      out=gap[0]) < reach
    if shared is not None:
        near &= shared > 0
    # Flat indices: 1-D nonzero and `take` on raveled arrays are the cheap numpy calls.
    pairs = near.reshape(-1).nonzero()[0]
    if len(pairs) == 0:
        return oks
    rows, columns = np.divmod(pairs, num_b)
    difference = a.xy.take(rows, axis=0) - b.xy.take(columns, axis=0)  # (P, 2, K)
    difference *= difference
    exponent = difference[:, 0] + difference[:, 1]
    exponent *= exponent_factors
    exponent /= scale.reshape(-1).take(pairs)[:, None]
    # exp of a far keypoint underflows, and numpy's exp then takes a scalar path
    # several times slower: floor the exponent where exp is still a normal float
    # (a term of 1.6e-38 instead of a smaller number or 0: no OKS moves by more).
    np.maximum(exponent, _EXPONENT_FLOOR, out=exponent)
    similarity = np.exp(exponent, out=exponent)
    both, count = a.shared(b, rows, columns)
    similarity *= both
    # An int32 count (popcount gives uint8) makes numpy divide in float64, as `oks_matrix` always has.
    oks.reshape(-1)[pairs] = similarity.sum(axis=1) / count.astype(np.int32, copy=False)
    return oks


def pose_similarity(
    keypoints_a: np.ndarray,
    boxes_a: np.ndarray,
    areas_a: np.ndarray,
    keypoints_b: np.ndarray,
    boxes_b: np.ndarray,
    areas_b: np.ndarray,
    *,
    kind: str = "oks",
    oks_weight: float = 0.5,
    sigmas: np.ndarray = COCO_SIGMAS,
    keypoint_threshold: float = 0.3,
    min_shared_keypoints: int = 3,
) -> np.ndarray:
    """(A, B) float32 similarity used for matching, in [0, 1].

    kind "oks": OKS on confident keypoints; a pair sharing fewer than
    `min_shared_keypoints` confident keypoints falls back to box IoU (OKS on
    one or two joints says little about identity). "iou": box IoU only.
    "mix": oks_weight * (OKS with fallback) + (1 - oks_weight) * IoU.
    """
    if kind not in SIMILARITY_KINDS:
        raise ValueError(f"similarity kind must be one of {SIMILARITY_KINDS}, got {kind!r}")
    if kind == "iou":
        return iou_matrix(boxes_a, boxes_b)
    return similarity_between(
        PoseSet.from_keypoints(np.asarray(keypoints_a), keypoint_threshold), boxes_a,
        np.asarray(areas_a, np.float32),
        PoseSet.from_keypoints(np.asarray(keypoints_b), keypoint_threshold), boxes_b,
        np.asarray(areas_b, np.float32),
        kind=kind, oks_weight=oks_weight, exponent_factors=oks_exponent_factors(sigmas),
        min_shared_keypoints=min_shared_keypoints)


def similarity_between(a: PoseSet, boxes_a: np.ndarray, areas_a: np.ndarray, b: PoseSet, boxes_b: np.ndarray,
                       areas_b: np.ndarray, *, kind: str, oks_weight: float, exponent_factors: np.ndarray,
                       min_shared_keypoints: int) -> np.ndarray:
    """`pose_similarity` on prepared pose sets (boxes (A, 4), (B, 4) and areas float32)."""
    if kind == "iou":
        return iou_matrix(boxes_a, boxes_b)
    shared = None if surely_share(a, b, max(min_shared_keypoints, 1)) else shared_counts(a, b)
    oks = oks_between(a, b, areas_a, areas_b, exponent_factors, shared)
    if kind == "mix":
        iou = iou_matrix(boxes_a, boxes_b)
        if shared is not None:
            oks = np.where(shared >= min_shared_keypoints, oks, iou)
        return (oks_weight * oks + (1.0 - oks_weight) * iou).astype(np.float32)
    if shared is None:
        return oks
    # Box IoU only for the (usually few) pairs that need the fallback.
    fallback = shared < min_shared_keypoints
    if fallback.any():
        rows, columns = np.nonzero(fallback)
        oks[rows, columns] = _paired_iou(boxes_a[rows], boxes_b[columns])
    return oks
