"""Shared pieces of the training tests: the small config, synthetic data sets and `main.py train` runs."""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

import numpy as np

from evaluation.synthetic_keypoints import write_dataset

ROOT = Path(__file__).resolve().parents[1]
# HRNet widths 16/32/64, input 48x64: the config of tests/data/trained (the official COCO recipe values).
SMALL_CONFIG = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.yaml"


@contextlib.contextmanager
def torch_threads(count: int):
    """Run the block with `count` torch intra-op threads (restored after).

    Why: on 2 cores shared with other jobs, two spinning OpenMP threads per
    process run a training step several times slower than one; the results
    do not depend on it beyond float summation order.
    """
    import torch  # noqa: PLC0415

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def synthetic_set(root: Path, train_images: int, val_images: int, train_seed: int = 1, val_seed: int = 2) -> Path:
    """Stick-figure COCO set under `root` (images/<split>, annotations/person_keypoints_<split>.json)."""
    write_dataset(root, "train", train_images, train_seed)
    write_dataset(root, "val", val_images, val_seed)
    return root


def train_command(config: Path, data_root: Path, out: Path, epochs: int, flags=(), overrides=()) -> list[str]:
    """`main.py train` arguments for `config` on a synthetic set (official KEY VALUE overrides last)."""
    return ["train", str(config), "--out", str(out), "--no-progress", "--seed", "0", *flags,
            "DATASET.ROOT", str(data_root), "TRAIN.END_EPOCH", str(epochs), *overrides]


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def mean_pose_results(train_annotation: dict, val_annotation: dict) -> list[dict]:
    """COCO results of a predictor that sees the box but not the pixels.

    Each joint's mean position relative to the box (x / box width, y / box
    height, over the training people where it is labelled) is placed in every
    validation box, with score 1.
    """
    def relative(item):
        points = np.asarray(item["keypoints"], np.float64).reshape(-1, 3)
        x, y, w, h = item["bbox"]
        return (points[:, :2] - [x, y]) / [w, h], (points[:, 2] > 0)[:, None]

    pairs = [relative(item) for item in train_annotation["annotations"]]
    labelled = sum(visible.astype(np.float64) for _, visible in pairs)
    mean = sum(np.where(visible, xy, 0.0) for xy, visible in pairs) / np.maximum(labelled, 1.0)
    results = []
    for item in val_annotation["annotations"]:
        x, y, w, h = item["bbox"]
        xy = mean * [w, h] + [x, y]
        keypoints = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
        results.append({"image_id": int(item["image_id"]), "category_id": 1,
                        "keypoints": keypoints.reshape(-1).tolist(), "score": 1.0})
    return results
