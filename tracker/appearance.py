"""Appearance descriptors of poses, for re-identification (`tracker.reid`).

An encoder maps one frame and its poses to an `Appearance`: per pose, P parts
with F numbers each, and which parts were seen. Two encoders share that form:

    PartColourEncoder   colour and texture of the body parts, sampled along the
                        skeleton at the confident keypoints (numpy only, about
                        0.1 ms for 10 people): clothes of different colours.
    OnnxReidEncoder     (`tracker.reid_network`) an embedding from a ReID
                        network the user names (one "part", the whole box).

`appearance_distance` compares them: the mean over the parts both sides saw of
the parts' distances, scaled by the encoder's `distance_scale` so that 0 is
the same look and about 1 clearly different people; NaN where the two share no
part (nothing to compare, so appearance has no say).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Appearance:
    """Descriptors of N poses.

    features: (N, P, F) float32, part p of pose n (meaningless where not seen).
    seen: (N, P) bool, the parts the frame showed (confident keypoints, inside the image).
    """

    features: np.ndarray
    seen: np.ndarray

    def __len__(self) -> int:
        return len(self.features)

    def take(self, indices: np.ndarray) -> "Appearance":
        return Appearance(self.features.take(indices, axis=0), self.seen.take(indices, axis=0))


class AppearanceEncoder(Protocol):
    """What `tracker.reid` needs from an encoder.

    num_parts, num_features: P and F of its descriptors.
    distance_scale: part distance (Euclidean, on the features) that reads as 1.
    part_keypoints: optional (P, K) float32, 1 where part p is drawn from keypoint k
        (an encoder without it describes the whole box).
    """

    num_parts: int
    num_features: int
    distance_scale: float

    def encode(self, frame: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray,
               keypoint_threshold: float) -> Appearance:
        """Descriptors of the (N, K, 3) poses with (N, 4) xyxy boxes in the (H, W, 3) BGR frame."""
        ...


def appearance_distance(a_features: np.ndarray, a_seen: np.ndarray, b_features: np.ndarray, b_seen: np.ndarray,
                        distance_scale: float) -> np.ndarray:
    """(..., A, B) float32 mean part distance / distance_scale, NaN where no part is shared.

    a_features: (..., A, P, F), a_seen: (..., A, P) (a leading axis, e.g. the
    prototypes of a gallery, broadcasts); b_features: (B, P, F), b_seen: (B, P).
    """
    difference = a_features[..., :, None, :, :] - b_features[None, :, :, :]  # (..., A, B, P, F)
    part_distance = np.sqrt(np.einsum("...f,...f->...", difference, difference))  # (..., A, B, P)
    shared = a_seen[..., :, None, :] & b_seen[None, :, :]
    count = shared.sum(axis=-1)
    total = np.where(shared, part_distance, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / (count * distance_scale)).astype(np.float32)


# COCO-17 body parts, each a list of sample points; a sample point is a weighted
# sum of keypoints. Left and right limbs make one part, so a person seen from
# the other side (or with one arm hidden) still has the same parts.
_LIMB_FRACTIONS = (0.2, 0.35, 0.5, 0.65, 0.8)
_COCO_PARTS = {
    "torso": None,  # a grid on the shoulders-hips quadrilateral, below
    "upper arms": ((5, 7), (6, 8)),
    "forearms": ((7, 9), (8, 10)),
    "thighs": ((11, 13), (12, 14)),
    "shins": ((13, 15), (14, 16)),
}
COCO_PART_NAMES = tuple(_COCO_PARTS)
# Offset (grey-level units) that keeps chromaticity and ratios of dark clothes from exploding.
_DARK_OFFSET = 8.0
# Feature weights: chromaticity (3), brightness relative to the whole person (1), texture contrast (1).
_FEATURE_WEIGHTS = np.array([1.0, 1.0, 1.0, 0.5, 1.0], np.float32)


def _coco_sample_weights(num_keypoints: int) -> tuple[np.ndarray, np.ndarray]:
    """(S, K) float32 keypoint weights of every sample point and (S,) int part index."""
    rows, parts = [], []
    for part, (name, segments) in enumerate(_COCO_PARTS.items()):
        if name == "torso":
            for u in (0.25, 0.5, 0.75):  # across: left to right shoulder/hip
                for v in (0.2, 0.4, 0.6, 0.8):  # down: shoulders to hips
                    row = np.zeros(num_keypoints, np.float32)
                    row[[5, 6, 11, 12]] = [(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v]
                    rows.append(row)
                    parts.append(part)
            continue
        for start, end in segments:
            for t in _LIMB_FRACTIONS:
                row = np.zeros(num_keypoints, np.float32)
                row[start], row[end] = 1 - t, t
                rows.append(row)
                parts.append(part)
    return np.stack(rows), np.asarray(parts, np.int64)


class PartColourEncoder:
    """Colour and texture of five body parts (torso, upper arms, forearms, thighs,
    shins), sampled at points along the skeleton.

    A sample point counts only when every keypoint it is built from is
    confident and it lies inside the frame, so an occluded or out-of-frame limb
    leaves its part unseen instead of polluting it; a part needs
    `min_samples` valid points. Per part (F = 5): the mean colour's
    chromaticity (3, each channel / mean intensity - 1), its brightness
    relative to the whole person (log ratio) and its texture contrast (mean
    channel standard deviation / mean intensity). All are ratios (of values
    offset by a few grey levels, which keeps dark clothes stable), so a
    brighter or darker scene (a global gain) barely changes them.

    Needs the 17 COCO keypoints.
    """

    num_parts = len(_COCO_PARTS)
    num_features = len(_FEATURE_WEIGHTS)
    # Same clothes under detector jitter measure about 0.05-0.15 apart in these
    # units, different colours 0.5 and more (benchmarks/tracker_reid.py scenes).
    distance_scale = 0.6

    def __init__(self, num_keypoints: int = 17, min_samples: int = 4) -> None:
        if num_keypoints != 17:
            raise ValueError(f"PartColourEncoder needs the 17 COCO keypoints (their body parts), got {num_keypoints}")
        self._weights, self._part_of_sample = _coco_sample_weights(num_keypoints)
        self._sample_keypoints = (self._weights > 0).T.astype(np.float32)  # (K, S)
        self._one_hot = np.eye(self.num_parts, dtype=np.float32)[self._part_of_sample]  # (S, P)
        self._part_of_sample_t = np.ascontiguousarray(self._one_hot.T)  # (P, S)
        # (P, K) float32 1 where a part's sample points use the keypoint (`tracker.reid` drops parts hidden by others).
        self.part_keypoints = ((self._part_of_sample_t @ self._sample_keypoints.T) > 0).astype(np.float32)
        self._min_samples = min_samples

    def encode(self, frame: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray,
               keypoint_threshold: float) -> Appearance:
        n = len(keypoints)
        if n == 0:
            return Appearance(np.zeros((0, self.num_parts, self.num_features), np.float32),
                              np.zeros((0, self.num_parts), bool))
        height, width = frame.shape[:2]
        xy = np.matmul(self._weights, keypoints[..., :2])  # (N, S, 2) px
        unconfident = (keypoints[..., 2] < keypoint_threshold).astype(np.float32)  # (N, K)
        # A sample is valid when none of its keypoints is unconfident.
        valid = (unconfident @ self._sample_keypoints) == 0  # (N, S)
        column, row = np.rint(xy[..., 0]).astype(np.int64), np.rint(xy[..., 1]).astype(np.int64)
        valid &= (column >= 0) & (column < width) & (row >= 0) & (row < height)
        np.clip(row, 0, height - 1, out=row)
        np.clip(column, 0, width - 1, out=column)
        pixels = frame[row, column].astype(np.float32)
        if pixels.ndim == 2:  # a gray frame: one channel, seen as three equal ones
            pixels = np.repeat(pixels[..., None], 3, axis=2)
        pixels *= valid[..., None]
        # Per part sums of the colours and of their squares, in one product: (N, P, 6).
        sums = np.matmul(self._part_of_sample_t, np.concatenate([pixels, pixels * pixels], axis=2))
        counts = valid.astype(np.float32) @ self._one_hot  # (N, P)
        seen = counts >= self._min_samples
        sums /= np.maximum(counts, 1.0)[..., None]
        mean, square = sums[..., :3], sums[..., 3:]
        spread = np.sqrt(np.maximum(square - mean * mean, 0.0)).mean(axis=2)  # (N, P)
        intensity = mean.mean(axis=2) + _DARK_OFFSET  # (N, P)
        # The person's mean intensity over the parts seen: the reference for relative brightness.
        seen_weight = seen.astype(np.float32)
        person = np.maximum((intensity * seen_weight).sum(axis=1) / np.maximum(seen_weight.sum(axis=1), 1.0),
                            _DARK_OFFSET)  # (N,); no part seen: any positive value
        features = np.empty((n, self.num_parts, self.num_features), np.float32)
        features[..., :3] = (mean + _DARK_OFFSET) / intensity[..., None] - 1.0
        features[..., 3] = np.log(intensity / person[:, None])
        features[..., 4] = spread / intensity
        features *= _FEATURE_WEIGHTS
        return Appearance(features, seen)


def make_encoder(reid: str, num_keypoints: int) -> AppearanceEncoder:
    """The encoder of a `TrackerOptions.reid` value ("appearance" or an ONNX file path)."""
    if reid == "appearance":
        return PartColourEncoder(num_keypoints)
    from tracker.reid_network import OnnxReidEncoder  # noqa: PLC0415  (onnxruntime only for a network)

    return OnnxReidEncoder(reid)
