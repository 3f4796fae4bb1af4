"""MPII PCKh evaluation, as the official HRNet code computes it (lib/dataset/mpii.py).

Ground truth is the official `annot/gt_valid.mat` (fields `pos_gt_src` (16, 2, N),
`jnt_missing` (16, N), `headboxes_src` (2, 2, N), `dataset_joints` names), or the
same fields person-major in JSON (see `load_ground_truth`). Coordinates are
MATLAB 1-based pixels, like the official `pred.mat` (the official code adds 1
to its 0-based predictions before evaluating).

Rules (FACTS.md section 10): head size = 0.6 x the head-box diagonal; a visible
joint is correct when error / head size <= threshold; per-joint PCKh = 100 x
correct / visible. Table: Head = the joint named `head` (head top), the other
columns the mean of left and right, Mean = the visible-count-weighted mean over
all joints except pelvis and thorax. "Mean@0.1": the official code takes row
11 of the threshold grid 0, 0.01, ..., 0.50, which is threshold 0.11, not 0.10;
we do the same by default (`low_threshold_index=11`) and offer the literal 0.10
(`low_threshold_index=10`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Standard MPII order, with the short names of gt_valid.mat's `dataset_joints`
# (core.skeletons.MPII_KEYPOINT_NAMES has the long ones). "Joint" stays in this
# module's text where it is MPII's own term (dataset_joints, jnt_missing, per-joint PCKh).
MPII_SHORT_NAMES: tuple[str, ...] = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor",
    "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
)
HEAD_SIZE_FACTOR = 0.6  # SC_BIAS
THRESHOLD = 0.5
# The official threshold grid: np.arange(0, 0.5 + 0.01, 0.01)
THRESHOLD_GRID = np.arange(0, 0.5 + 0.01, 0.01)
OFFICIAL_LOW_THRESHOLD_INDEX = 11  # the official "Mean@0.1" row: THRESHOLD_GRID[11] == 0.11
EXCLUDED_FROM_MEAN = ("pelv", "thor")
TABLE_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Head", ("head",)),
    ("Shoulder", ("lsho", "rsho")),
    ("Elbow", ("lelb", "relb")),
    ("Wrist", ("lwri", "rwri")),
    ("Hip", ("lhip", "rhip")),
    ("Knee", ("lkne", "rkne")),
    ("Ankle", ("lank", "rank")),
)


@dataclass(frozen=True)
class MpiiGroundTruth:
    """keypoints: (N, 16, 2) float64 1-based px (`pos_gt_src`); visible: (N, 16) bool; head_boxes: (N, 2, 2) [[x1, y1], [x2, y2]] px."""

    keypoints: np.ndarray
    visible: np.ndarray
    head_boxes: np.ndarray
    keypoint_names: tuple[str, ...] = MPII_SHORT_NAMES

    def __len__(self) -> int:
        return len(self.keypoints)


@dataclass(frozen=True)
class MpiiResult:
    """pckh: (16,) percent at the threshold; counts: (16,) visible joints; curve: (51, 16) PCKh per grid threshold."""

    pckh: np.ndarray
    counts: np.ndarray
    curve: np.ndarray
    keypoint_names: tuple[str, ...]
    summary: dict[str, float]
    low_threshold: float

    def format_table(self, name: str = "pose_hrnet") -> str:
        """The official `_print_name_value` markdown table, plus a per-joint table."""
        names, values = list(self.summary), list(self.summary.values())
        lines = [
            "| Arch " + " ".join(f"| {n}" for n in names) + " |",
            "|---" * (len(names) + 1) + "|",
            f"| {name} " + " ".join(f"| {v:.3f}" for v in values) + " |",
            "",
            "| joint | " + " | ".join(self.keypoint_names) + " |",
            "|---" * (len(self.keypoint_names) + 1) + "|",
            "| PCKh | " + " | ".join(f"{v:.2f}" for v in self.pckh) + " |",
            "| visible | " + " | ".join(str(int(c)) for c in self.counts) + " |",
        ]
        return "\n".join(lines)


def _names(value) -> tuple[str, ...]:
    """Joint names from a loadmat cell array (nested object arrays) or a list."""
    flat: list[str] = []

    def walk(item):
        if isinstance(item, str):
            flat.append(item)
        elif isinstance(item, np.ndarray) and item.dtype.kind in "US":
            flat.extend(str(s) for s in item.ravel())
        else:
            for sub in item:
                walk(sub)

    walk(value)
    return tuple(flat)


def _read_file(path: Path, what: str):
    """The content of a .mat (dict of arrays), .npy (array) or .json file; ValueError naming it when unreadable."""
    from scipy.io.matlab import MatReadError  # noqa: PLC0415 - scipy.io costs about 0.5 s; only MPII reads .mat files

    suffix = path.suffix.lower()
    try:
        if suffix == ".mat":
            from scipy.io import loadmat  # noqa: PLC0415 - as above

            return loadmat(path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (MatReadError, ValueError, UnicodeDecodeError, EOFError) as error:
        # json.JSONDecodeError and numpy's pickle refusal are ValueErrors.
        raise ValueError(f"{path}: cannot be read as {what} ({type(error).__name__}: {error})") from error


def _numbers(path: Path, field: str, value) -> np.ndarray:
    """`value` as a float64 array; ValueError naming the file and field when it holds no numbers."""
    try:
        return np.asarray(value, np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {field}: expected an array of numbers ({error})") from error


def load_ground_truth(path: str | os.PathLike) -> MpiiGroundTruth:
    """Read gt_valid.mat, or a JSON file {"pos_gt_src": N x 16 x 2, "jnt_missing": N x 16,
    "headboxes_src": N x 2 x 2, "dataset_joints": 16 names (optional)} (1-based pixels)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MPII ground truth not found: {path}")
    data = _read_file(path, "MPII ground truth")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object with pos_gt_src, jnt_missing and headboxes_src, "
                         f"got {type(data).__name__}")
    for key in ("pos_gt_src", "jnt_missing", "headboxes_src"):
        if key not in data:
            raise ValueError(f"{path}: field {key!r} missing (expected the official gt_valid.mat layout)")
    joints = _numbers(path, "pos_gt_src", data["pos_gt_src"])
    missing = _numbers(path, "jnt_missing", data["jnt_missing"])
    boxes = _numbers(path, "headboxes_src", data["headboxes_src"])
    if path.suffix.lower() == ".mat":
        # MATLAB layout: people on the last axis.
        if joints.ndim != 3 or missing.ndim != 2 or boxes.ndim != 3:
            raise ValueError(f"{path}: expected pos_gt_src 16x2xN, jnt_missing 16xN, headboxes_src 2x2xN; got "
                             f"{joints.shape}, {missing.shape}, {boxes.shape}")
        joints, missing, boxes = np.transpose(joints, (2, 0, 1)), missing.T, np.transpose(boxes, (2, 0, 1))
        names = _names(data["dataset_joints"]) if "dataset_joints" in data else MPII_SHORT_NAMES
    else:
        names = tuple(data.get("dataset_joints", MPII_SHORT_NAMES))
    count = len(joints)
    if joints.shape != (count, 16, 2):
        raise ValueError(f"{path}: pos_gt_src: expected 16 x 2 joints per person, got shape {joints.shape}")
    if missing.shape != (count, 16):
        raise ValueError(f"{path}: jnt_missing: expected shape ({count}, 16), got {missing.shape}")
    if boxes.shape != (count, 2, 2):
        raise ValueError(f"{path}: headboxes_src: expected shape ({count}, 2, 2), got {boxes.shape}")
    if sorted(names) != sorted(MPII_SHORT_NAMES):
        raise ValueError(f"{path}: dataset_joints: expected the 16 MPII names {MPII_SHORT_NAMES}, got {names}")
    return MpiiGroundTruth(joints, missing == 0, boxes, names)


def load_predictions(path: str | os.PathLike, one_based: bool | None = None) -> np.ndarray:
    """(N, 16, 2) float64 1-based predictions.

    .mat: the official `preds` array (already 1-based). .npy / .json: (N, 16, 2)
    or (N, 16, 3) arrays in our 0-based pixel convention (1 is added), unless
    `one_based` says otherwise. JSON: a list, or {"preds": list}.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MPII predictions not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".mat", ".npy", ".json"):
        raise ValueError(f"{path}: unknown prediction format (expected .mat, .npy or .json)")
    data = _read_file(path, "MPII predictions")
    if suffix == ".mat":
        one_based = True if one_based is None else one_based
    if isinstance(data, dict):
        if "preds" not in data:
            raise ValueError(f"{path}: field 'preds' missing (expected the official pred.mat layout)")
        data = data["preds"]
    preds = _numbers(path, "preds", data)
    if preds.ndim != 3 or preds.shape[1] != 16 or preds.shape[2] not in (2, 3):
        raise ValueError(f"{path}: preds: expected shape (N, 16, 2) or (N, 16, 3), got {preds.shape}")
    preds = preds[:, :, :2]
    return preds if one_based else preds + 1.0


def evaluate_pckh(
    ground_truth: MpiiGroundTruth,
    predictions: np.ndarray,
    *,
    threshold: float = THRESHOLD,
    low_threshold_index: int = OFFICIAL_LOW_THRESHOLD_INDEX,
) -> MpiiResult:
    """PCKh of 1-based (N, 16, 2) predictions (joint order of the GT's `dataset_joints`)."""
    if predictions.shape != ground_truth.keypoints.shape:
        raise ValueError(f"predictions have shape {predictions.shape}, ground truth {ground_truth.keypoints.shape}")
    visible = ground_truth.visible.T.astype(np.float64)  # (16, N), as the official arrays
    error = np.linalg.norm(predictions - ground_truth.keypoints, axis=2).T  # (16, N) px
    head_size = np.linalg.norm(ground_truth.head_boxes[:, 1] - ground_truth.head_boxes[:, 0], axis=1) * HEAD_SIZE_FACTOR
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = error / head_size[None, :] * visible
        counts = visible.sum(axis=1)

        def pck(limit: float) -> np.ndarray:
            return 100.0 * ((scaled <= limit) * visible).sum(axis=1) / counts

        pckh = pck(threshold)
        curve = np.stack([pck(t) for t in THRESHOLD_GRID])
    names = ground_truth.keypoint_names
    index = {name: names.index(name) for name in names}
    used = np.array([name not in EXCLUDED_FROM_MEAN for name in names])
    ratio = np.where(used, counts, 0.0) / counts[used].sum()
    summary = {column: float(np.mean([pckh[index[n]] for n in members])) for column, members in TABLE_COLUMNS}
    summary["Mean"] = float(np.sum(pckh[used] * ratio[used]))
    summary["Mean@0.1"] = float(np.sum(curve[low_threshold_index][used] * ratio[used]))
    return MpiiResult(pckh, counts, curve, names, summary, float(THRESHOLD_GRID[low_threshold_index]))
