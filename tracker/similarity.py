"""Pairwise similarity between poses: vectorised OKS and box IoU matrices.

All functions work on whole sets of poses at once (no Python loop over pairs).
At tens of people a numpy call's fixed overhead (about a microsecond), not
its arithmetic, is what a tracker frame pays for, so the tracker prepares each
pose set once (`PoseSet`) and calls `similarity_between` / `oks_between`;
`pose_similarity` and `oks_matrix` are the same computations on plain arrays.
Coordinates are frame pixels; boxes are xyxy float32.
"""

from __future__ import annotations

import math

import numpy as np

from core.skeletons import coco_sigmas

# COCO per-keypoint OKS sigmas (pycocotools / official HRNet), in COCO joint order:
# nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles (left before right).
COCO_SIGMAS = coco_sigmas(np.float32)  # float32: the tracker's OKS runs in float32

SIMILARITY_KINDS = ("oks", "iou", "mix")

# Finite stand-in for "no confident keypoint" extents (finite, so no inf - inf).
_FAR_PX = np.float32(1.0e9)
# Lowest OKS exponent evaluated: exp(-87) = 1.6e-38 is the smallest normal float32 result.
_EXPONENT_FLOOR = np.float32(-87.0)
# Up to this many pose pairs, OKS is computed for every pair: the distance gate
# of `oks_between` costs about 20 numpy calls (tens of microseconds), more than
# the arithmetic it saves on up to about a hundred pairs (measured crossover).
_DENSE_MAX_PAIRS = 128
# OKS below this reads 0 (the gate's bound): far pairs give the same 0 on either path.
_NEGLIGIBLE_OKS = np.float32(1e-6)


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
# Extent row facing each extent row of another pose: low x <-> -high x, low y <-> -high y.
_FACING = np.array([2, 3, 0, 1])


class PoseSet:
    """Arrays derived from N poses that several steps of a frame need, each computed once.

    A tracker frame compares, pairs and measures the same detections and
    predictions several times; at tens of people numpy's per-call overhead
    (about a microsecond) and its per-row cost on short rows (tens of
    nanoseconds a row), not arithmetic, are the cost. So the derived arrays
    are made once and shared, and laid out so that the per-pair work runs on
    long contiguous rows.

    signed: (K, 4, N) float32 px, keypoint-major, per keypoint the rows x, y,
        -x, -y over all poses. Gathering pairs along the last axis and summing
        over the keypoints (the first axis) are long-row numpy operations, and
        one min over the keypoints gives every pose's extent.
    confident: (N, K) bool, keypoint confidence >= the threshold.
    xy (lazy): (N, 2, K) float32 px pose-major copy of the x and y rows. Sums
        over its contiguous last axis run in the same order as over an (N, K)
        array, so the motion measurements match the plain formulas to the bit.
    bits (lazy): (N,) uint64 `confident` as bit masks (None when K > 64), so the
        keypoints two poses share are one AND and a popcount.
    extent() (lazy): (4, N) float32 rows low x, low y, -high x, -high y of the
        confident keypoints; a pose with none gets +_FAR_PX everywhere, an
        inverted box that passes no gate.
    """

    __slots__ = ("signed", "confident", "_xy", "_bits", "_counts", "_extent")

    def __init__(self, signed: np.ndarray, confident: np.ndarray) -> None:
        self.signed = signed
        self.confident = confident
        self._xy = self._bits = self._counts = self._extent = None

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray, keypoint_threshold: float) -> "PoseSet":
        """From (N, K, 3) [x, y, confidence] px."""
        xy = np.ascontiguousarray(keypoints[..., :2].transpose(1, 2, 0))  # (K, 2, N)
        return cls(np.concatenate([xy, -xy], axis=1), keypoints[..., 2] >= keypoint_threshold)

    def __len__(self) -> int:
        return self.signed.shape[2]

    @property
    def xy(self) -> np.ndarray:
        if self._xy is None:
            self._xy = np.ascontiguousarray(self.signed[:, :2].transpose(2, 1, 0))
        return self._xy

    def shifted(self, shift: np.ndarray) -> "PoseSet":
        """The poses moved by `shift`: (N, 2) per pose or (2,) for all, px."""
        signed_shift = np.concatenate([shift, -shift], axis=-1)  # (N, 4) or (4,)
        moved = PoseSet(self.signed + (signed_shift.T if signed_shift.ndim == 2 else signed_shift[:, None]),
                        self.confident)
        moved._bits, moved._counts = self._bits, self._counts  # same confident keypoints
        return moved

    def take(self, index: np.ndarray) -> "PoseSet":
        """The poses at (M,) int `index`."""
        return PoseSet(self.signed.take(index, axis=2), self.confident.take(index, axis=0))

    @property
    def bits(self) -> np.ndarray | None:
        if self._bits is None and self.confident.shape[1] <= 64:
            # An integer matrix product (no BLAS): one call instead of a multiply and a sum.
            self._bits = self.confident @ _KEYPOINT_BITS[: self.confident.shape[1]]
        return self._bits

    def counts(self) -> np.ndarray:
        """(N,) number of confident keypoints per pose."""
        if self._counts is None:
            self._counts = self.confident.sum(axis=1)  # one call (via the bit masks: two)
        return self._counts

    def shared(self, other: "PoseSet", rows: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints confident in both poses of (M,) pairs (self[rows], other[columns]):
        (M, K) bool mask and (M,) count."""
        both = self.confident.take(rows, axis=0)
        both &= other.confident.take(columns, axis=0)
        return both, both.sum(axis=1)  # one call (the bit masks would need four)

    def extent(self) -> np.ndarray:
        if self._extent is None:
            # A min over the first (keypoint) axis is a few long vector operations; the
            # masked reduction skips the (K, 4, N) temporary of an np.where.
            self._extent = np.minimum.reduce(self.signed, axis=0, where=self.confident.T[:, None, :],
                                             initial=_FAR_PX)
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


def _reach_factor(exponent_factors: np.ndarray, min_oks: float) -> float:
    """Gate reach in units of sqrt(scale) beyond which OKS < `min_oks`.

    Two poses whose extents are D apart have every keypoint distance >= D, so
    each OKS term, and their mean, is at most exp(D^2 * weakest factor / scale)
    (the widest sigma's factor); that is below min_oks for D beyond
    sqrt(ln(1 / min_oks) / -weakest factor) * sqrt(scale). 1.01: a margin for
    float32 rounding. For 1e-6 and the COCO sigmas this is 1.14; 1.2 is kept.
    """
    if min_oks <= _NEGLIGIBLE_OKS or min_oks >= 1.0:  # (at 1 the bound is 0: keep a safe reach)
        return 1.2
    weakest = float(exponent_factors.max())  # closest to 0: the widest sigma
    return 1.01 * math.sqrt(math.log(1.0 / min_oks) / -weakest)


def oks_between(a: PoseSet, b: PoseSet, areas_a: np.ndarray, areas_b: np.ndarray, exponent_factors: np.ndarray,
                shared: np.ndarray | None, min_oks: float = 0.0) -> np.ndarray:
    """`oks_matrix` on prepared pose sets: (A, B) float32 OKS.

    areas_a, areas_b: (A,), (B,) float32 px^2; exponent_factors from
    `oks_exponent_factors`; shared: from `shared_counts` (None: every pair
    shares a keypoint). min_oks: pairs whose OKS is surely below it may be
    returned as 0 unevaluated (a matcher with a threshold passes it: fewer
    pairs to evaluate); OKS below 1e-6 always may.
    """
    num_a, num_b = len(a), len(b)
    if num_a == 0 or num_b == 0:
        return np.zeros((num_a, num_b), np.float32)
    scale = np.add.outer(areas_a, areas_b)
    scale *= 0.5
    if num_a * num_b <= _DENSE_MAX_PAIRS:
        return _dense_oks(a, b, scale, exponent_factors)
    oks = np.zeros((num_a, num_b), np.float32)
    reach = np.sqrt(scale)
    reach *= _reach_factor(exponent_factors, min_oks)
    # The four (A, B) gaps between the extents: low x_a - high x_b, low y_a - high y_b,
    # low x_b - high x_a, low y_b - high y_a; a pair is near when all are below the reach.
    # As one broadcast sum of (4, A, 1) and (4, 1, B) and a max over its first axis
    # (separate (A, B) operations each pay numpy's per-row cost again).
    gap = a.extent()[:, :, None] + b.extent().take(_FACING, axis=0)[:, None, :]
    near = gap.max(axis=0) < reach
    if shared is not None:
        near &= shared > 0
    # Flat indices: 1-D nonzero and `take` on raveled arrays are the cheap numpy calls.
    pairs = near.reshape(-1).nonzero()[0]
    if len(pairs) == 0:
        return oks
    rows, columns = np.divmod(pairs, num_b)
    # Keypoint-major (K, 2, P) and (K, P): every operation below runs on rows of P pairs.
    difference = a.signed[:, :2].take(rows, axis=2) - b.signed[:, :2].take(columns, axis=2)
    difference *= difference
    exponent = difference[:, 0] + difference[:, 1]
    exponent *= exponent_factors[:, None]
    exponent /= scale.reshape(-1).take(pairs)
    # exp of a far keypoint underflows, and numpy's exp then takes a scalar path
    # several times slower: floor the exponent where exp is still a normal float
    # (a term of 1.6e-38 instead of a smaller number or 0: no OKS moves by more).
    np.maximum(exponent, _EXPONENT_FLOOR, out=exponent)
    similarity = np.exp(exponent, out=exponent)
    both = a.confident.T.take(rows, axis=1)
    both &= b.confident.T.take(columns, axis=1)
    similarity *= both
    # Every gated pair shares a keypoint (by `shared`, or by the caller's guarantee when None).
    # float32 / float32 is correctly rounded, as a float64 division rounded to float32.
    oks.reshape(-1)[pairs] = similarity.sum(axis=0) / both.sum(axis=0, dtype=np.float32)
    return oks


def _dense_oks(a: PoseSet, b: PoseSet, scale: np.ndarray, exponent_factors: np.ndarray) -> np.ndarray:
    """`oks_between` of every (A, B) pair without the distance gate (same formula
    and float32 arithmetic; a pair sharing no keypoint gets 0)."""
    difference = a.xy[:, None] - b.xy[None, :]  # (A, B, 2, K)
    difference *= difference
    exponent = difference[:, :, 0] + difference[:, :, 1]  # (A, B, K)
    exponent *= exponent_factors
    exponent /= scale[..., None]
    np.maximum(exponent, _EXPONENT_FLOOR, out=exponent)
    similarity = np.exp(exponent, out=exponent)
    both = a.confident[:, None] & b.confident[None, :]
    similarity *= both
    # float32 / float32 is correctly rounded, as the float64 division of the gated path.
    count = both.sum(axis=2, dtype=np.float32)
    oks = similarity.sum(axis=2)
    oks /= np.maximum(count, 1.0, out=count)
    oks *= oks >= _NEGLIGIBLE_OKS
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
                       min_shared_keypoints: int, min_similarity: float = 0.0) -> np.ndarray:
    """`pose_similarity` on prepared pose sets (boxes (A, 4), (B, 4) and areas float32).

    min_similarity: with kind "oks", OKS values surely below it may read 0
    (for a caller that only uses pairs at or above it; see `oks_between`).
    """
    if kind == "iou":
        return iou_matrix(boxes_a, boxes_b)
    shared = None if surely_share(a, b, max(min_shared_keypoints, 1)) else shared_counts(a, b)
    oks = oks_between(a, b, areas_a, areas_b, exponent_factors, shared,
                      min_similarity if kind == "oks" else 0.0)
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
