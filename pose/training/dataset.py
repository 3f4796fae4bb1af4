"""Training samples as tensors: the official `JointsDataset.__getitem__` (crop, targets, weights).

A sample is addressed by `(epoch, index)` (see `EpochSampler`) so that its
augmentation is drawn from `augment.sample_generator(seed, epoch, index)`:
identical in any DataLoader worker, after a resume and in every DDP rank.

An image that is missing or cannot be decoded is reported by name (logging
warning) and the sample is dropped from its batch (`collate_skipping_missing`),
so a bad file never stops a long run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from pose.codec import gaussian_target
from pose.training.augment import AugmentSettings, augment, sample_generator
from pose.training.layouts import KeypointLayout
from pose.training.records import PersonRecord
from pose.transforms import get_affine_transform, normalize

logger = logging.getLogger(__name__)


def affine_points(points_xy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Official `affine_transform` for many points: (K, 2) -> (K, 2) float64 through a (2, 3) matrix."""
    points_xy = np.asarray(points_xy, dtype=np.float64)
    return points_xy @ matrix[:, :2].T + matrix[:, 2]


class TopDownDataset(Dataset):
    """Crops of people with Gaussian heatmap targets.

    Args:
        records: the people (`pose.training.records`).
        config: the `ExperimentConfig` (MODEL sizes and sigma, DATASET augmentation and COLOR_RGB).
        layout: keypoint layout (flip pairs, half-body sets).
        train: augment (True) or the plain box crop (False).
        seed: base seed of the per-sample generators.

    Item: dict with `input` (3, H, W) float32 normalised crop, `target`
    (J, Hh, Wh) float32, `target_weight` (J, 1) float32, `index` int; or None
    when the image cannot be read.
    """

    def __init__(self, records: Sequence[PersonRecord], config, layout: KeypointLayout, train: bool = True, seed: int = 0):
        if config.model.num_joints != layout.num_keypoints:
            raise ValueError(
                f"{config.source}: MODEL.NUM_JOINTS is {config.model.num_joints} but the data has {layout.num_keypoints} keypoints"
            )
        if config.model.target_type != "gaussian":
            raise ValueError(f"{config.source}: MODEL.TARGET_TYPE {config.model.target_type!r}: only 'gaussian' is supported")
        self.records = list(records)
        self.layout = layout
        self.train = train
        self.seed = int(seed)
        self.image_size = tuple(int(v) for v in config.model.image_size)
        self.heatmap_size = tuple(int(v) for v in config.model.heatmap_size)
        self.sigma = float(config.model.sigma)
        self.color_rgb = bool(config.dataset.color_rgb)
        self.settings = AugmentSettings.from_config(config)

    def __len__(self) -> int:
        return len(self.records)

    def _read(self, path: str) -> np.ndarray | None:
        try:
            image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        except cv2.error as error:
            logger.warning("skipping %s: cannot decode it (%s)", path, error)
            return None
        if image is None:
            logger.warning("skipping %s: missing or not an image", path)
            return None
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if self.color_rgb else image

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        record = self.records[index]
        image = self._read(record.image_path)
        if image is None:
            return None
        if self.train:
            rng = sample_generator(self.seed, epoch, index)
            sample = augment(record.center, record.scale, record.joints, record.joints_vis, image.shape[1],
                             self.settings, self.layout.upper_body, self.layout.flip_pairs, rng)
            if sample.flipped:
                image = image[:, ::-1, :]
            center, scale, rotation = sample.center, sample.scale, sample.rotation
            joints, joints_vis = sample.joints, sample.joints_vis
        else:
            center, scale, rotation = record.center, record.scale, 0.0
            joints, joints_vis = record.joints.copy(), record.joints_vis.copy()
        matrix = get_affine_transform(center, scale, rotation, self.image_size)
        crop = cv2.warpAffine(np.ascontiguousarray(image), matrix, self.image_size, flags=cv2.INTER_LINEAR)
        visible = joints_vis[:, 0] > 0.0
        joints[visible, :2] = affine_points(joints[visible, :2], matrix)
        target, target_weight = gaussian_target(joints, joints_vis, self.image_size, self.heatmap_size, self.sigma)
        return {
            "input": torch.from_numpy(normalize(crop)),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(target_weight),
            "index": int(index),
        }


def collate_skipping_missing(items):
    """Default collation of the readable samples of a batch (None items dropped); None if none is left."""
    items = [item for item in items if item is not None]
    if not items:
        return None
    return torch.utils.data.default_collate(items)


class EpochSampler(Sampler):
    """A `DistributedSampler` (one replica when not distributed) that yields `(epoch, index)` keys.

    The order is the DistributedSampler's: a permutation seeded by seed + epoch
    (when shuffling), padded to a multiple of the replica count, rank r taking
    every replica-th index from r.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0):
        self.inner = DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.inner.set_epoch(self.epoch)

    def __iter__(self):
        return ((self.epoch, index) for index in self.inner)

    def __len__(self) -> int:
        return len(self.inner)
