"""The official training augmentation of one person (lib/dataset/JointsDataset.py `__getitem__`).

Order (FACTS section 7): half-body, scale, rotation, flip, then the crop.

- half-body: if more than NUM_JOINTS_HALF_BODY joints are visible and
  rand() < PROB_HALF_BODY, crop around the upper body (chosen when randn() < 0.5,
  about 69 %, and it has more than 2 visible joints) or the lower body;
  scale = aspect-corrected extent / 200 * 1.5;
- scale: s *= clip(randn * SCALE_FACTOR + 1, 1 - SCALE_FACTOR, 1 + SCALE_FACTOR);
- rotation: with probability 0.6, r = clip(randn * ROT_FACTOR, -2 ROT_FACTOR, 2 ROT_FACTOR) degrees, else 0;
- flip (DATASET.FLIP): with probability 0.5 mirror the image, x -> W - 1 - x for
  joints and center, swap the flip pairs (invisible joints become (0, 0)).

The official code draws from numpy's and Python's global generators; here every
draw comes from one `numpy.random.Generator` passed in (the same distributions
and probabilities, in the same order), so that a sample's augmentation depends
only on (seed, epoch, index): the same in any worker process, after a resume
and in every DDP rank.

Names follow the official code (joints, joints_vis, NUM_JOINTS_HALF_BODY), so the two
read side by side: a "joint" here is what the public API calls a keypoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose.transforms import PIXEL_STD, fliplr_joints

# Official constants of JointsDataset.__getitem__ that the YAML does not expose.
ROTATION_PROBABILITY = 0.6
FLIP_PROBABILITY = 0.5
HALF_BODY_SCALE = 1.5


@dataclass(frozen=True)
class AugmentSettings:
    """The DATASET section values of the recipe."""

    scale_factor: float
    rot_factor: float  # degrees
    flip: bool
    prob_half_body: float
    num_joints_half_body: int
    aspect_ratio: float  # input width / height

    @classmethod
    def from_config(cls, config) -> "AugmentSettings":
        dataset = config.dataset
        width, height = config.model.image_size
        return cls(float(dataset.scale_factor), float(dataset.rot_factor), bool(dataset.flip),
                   float(dataset.prob_half_body), int(dataset.num_joints_half_body), width / height)


@dataclass(frozen=True)
class Augmentation:
    """The crop of one sample: center (2,) float32 image px, scale (2,) float32, rotation degrees,
    and the (possibly flipped) joints (J, 3) and visibility (J, 3) in image px."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flipped: bool
    joints: np.ndarray
    joints_vis: np.ndarray


def half_body_box(joints, joints_vis, upper_body, aspect_ratio: float, rng: np.random.Generator):
    """Official `half_body_transform`: (center (2,) float32, scale (2,) float32) or None.

    Args:
        joints, joints_vis: (J, 3) image px and visibility.
        upper_body: indices of the upper set (the others are the lower set).
    """
    upper_ids = set(int(i) for i in upper_body)
    upper, lower = [], []
    for joint_id in range(len(joints)):
        if joints_vis[joint_id][0] > 0:
            (upper if joint_id in upper_ids else lower).append(joints[joint_id])
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    else:
        selected = lower if len(lower) > 2 else upper
    if len(selected) < 2:
        return None
    selected = np.array(selected, dtype=np.float32)
    center = selected.mean(axis=0)[:2]
    left_top = np.amin(selected, axis=0)
    right_bottom = np.amax(selected, axis=0)
    w = right_bottom[0] - left_top[0]
    h = right_bottom[1] - left_top[1]
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / PIXEL_STD, h * 1.0 / PIXEL_STD], dtype=np.float32) * HALF_BODY_SCALE
    return center, scale


def augment(
    center,
    scale,
    joints,
    joints_vis,
    image_width: int,
    settings: AugmentSettings,
    upper_body,
    flip_pairs,
    rng: np.random.Generator,
) -> Augmentation:
    """Draw the official augmentation of one sample (see the module docstring).

    Args:
        center (2,), scale (2,): the record's crop; joints, joints_vis: (J, 3).
        image_width: px, for the mirror.
    """
    center = np.array(center, dtype=np.float32, copy=True)
    scale = np.array(scale, dtype=np.float32, copy=True)
    joints = np.array(joints, dtype=np.float64, copy=True)
    joints_vis = np.array(joints_vis, dtype=np.float64, copy=True)
    if np.sum(joints_vis[:, 0]) > settings.num_joints_half_body and rng.random() < settings.prob_half_body:
        half = half_body_box(joints, joints_vis, upper_body, settings.aspect_ratio, rng)
        if half is not None:
            center, scale = half
    sf, rf = settings.scale_factor, settings.rot_factor
    scale = scale * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
    rotation = float(np.clip(rng.standard_normal() * rf, -rf * 2, rf * 2)) if rng.random() <= ROTATION_PROBABILITY else 0.0
    flipped = False
    if settings.flip and rng.random() <= FLIP_PROBABILITY:
        joints, joints_vis = fliplr_joints(joints, joints_vis, image_width, flip_pairs)
        center[0] = image_width - center[0] - 1
        flipped = True
    return Augmentation(center, np.asarray(scale, np.float32), rotation, flipped, joints, joints_vis)


def sample_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample's augmentation in one epoch."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))
