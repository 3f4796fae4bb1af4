"""Do two backends give the same keypoints? OKS between their decoded keypoints, and pixel displacement.

The gate `auto` applies (`agrees`) is the object keypoint similarity (OKS)
between a backend's keypoints and eager fp32's on the same reference people,
with COCO's per-keypoint sigmas and each person's area: the quantity COCO AP
thresholds, so a gate on it speaks about what a user loses in AP. A backend
agrees when the mean OKS over the reference people is at least `OKS_MIN`.
Why 0.95 (benchmarks/backend_gate.py, docs/backend_gate.png: the trained
test network on its own synthetic validation set, 24 rows of real backends
and damaged copies): every row that lost at most 0.5 AP had a mean OKS to
eager of at least 0.955, so passes; every row that lost 2 AP or more had at
most 0.930, so is rejected. ONNX Runtime fp32 scored 1.000 (0.00 AP lost),
bf16 0.990 (-0.02), static int8 0.984 (0.34).

The reference people are the COCO val people of the project's test data
(tests/data/coco_mini, 4 images, 14 annotated people) in a checkout; an
installed copy, which cannot ship those, uses the packaged `reference/` folder
(a frame of OpenCV's vtest.avi with 7 hand-boxed people, no keypoint labels).
Any COCO-format folder can stand in (`reference_people(folder, name)`), e.g.
images from the network's own distribution. Their boxes are cropped as the
estimator crops them. Only keypoints the annotation labels count (all of them
where it has no keypoints), as in COCO AP.

Only meaningful with weights that have learned something, on people from the
network's own distribution: random weights, or a network shown people unlike
its training data, give near-flat heatmaps whose argmax jumps for any rounding
difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io import read_image
from core.skeletons import coco_sigmas
from pose.codec import get_max_preds, quarter_offset
from pose.transforms import boxes_to_centers_scales, network_input

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "coco_mini"
REFERENCE_ANNOTATIONS = "test_coco.json"
PACKAGED_REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
PACKAGED_REFERENCE_ANNOTATIONS = "people.json"
OKS_MIN = 0.95
# Sigma of every keypoint of a set without COCO's (MPII): the mean of COCO's 17.
FALLBACK_SIGMA = float(coco_sigmas().mean())


@dataclass(frozen=True)
class ReferencePeople:
    """People to compare backends on, as network inputs.

    Attributes:
        crops: (N, 3, h, w) float32 normalised network inputs (the estimator's crop).
        px_per_input_px: (N,) image px per network input px of each crop (the crop is a uniform scaling).
        areas: (N,) float64 each person's area, image px² (the annotation's `area`, else its box's).
        labeled: (N, J) bool keypoints the annotation labels (all True where it has none); J = 17 for
            COCO annotations, else every keypoint of the network counts.
        source: the folder they came from.
    """

    crops: np.ndarray
    px_per_input_px: np.ndarray
    areas: np.ndarray
    labeled: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.crops)


def reference_folder() -> tuple[Path, str]:
    """(folder, COCO-format annotation file name) of the reference people: the checkout's, else the packaged ones."""
    if (REFERENCE_DIR / REFERENCE_ANNOTATIONS).is_file():
        return REFERENCE_DIR, REFERENCE_ANNOTATIONS
    return PACKAGED_REFERENCE_DIR, PACKAGED_REFERENCE_ANNOTATIONS


def _annotated_people(folder: Path | None, annotations_name: str, images: Path | None = None):
    """[(BGR image, [annotation dicts of its people])] by image id; FileNotFoundError when the images are not there.

    The annotation file is `folder / annotations_name`; its `file_name`s are relative to `images` (default `folder`).
    """
    if folder is None:
        folder, annotations_name = reference_folder()
    folder = Path(folder)
    images = folder if images is None else Path(images)
    annotations = json.loads((folder / annotations_name).read_text())
    files = {image["id"]: image["file_name"] for image in annotations["images"]}
    people = []
    for image_id, file_name in sorted(files.items()):
        # As in COCO AP: crowds and people without a labeled keypoint do not count.
        found = [a for a in annotations["annotations"] if a["image_id"] == image_id and a["bbox"][2] > 1
                 and not a.get("iscrowd", 0) and (a.get("num_keypoints", 1) > 0 if "keypoints" in a else True)]
        if found:
            people.append((read_image(images / file_name), found))
    return people


def reference_people(input_size: tuple[int, int], color_rgb: bool = True, folder: Path | None = None,
                     annotations_name: str = REFERENCE_ANNOTATIONS, images: Path | None = None) -> ReferencePeople:
    """The people of `folder / annotations_name` (None: `reference_folder()`; images in `images`, default `folder`)
    cropped for a network of `input_size` (w, h) px."""
    crops, px_per_input_px, areas, labeled = [], [], [], []
    for image, found in _annotated_people(folder, annotations_name, images):
        boxes = np.asarray([a["bbox"] for a in found], np.float64)
        centers, scales = boxes_to_centers_scales(boxes, input_size[0] / input_size[1], "xywh")
        crops.append(network_input(image, centers, scales, input_size, color_rgb))
        # scale is in units of 200 px: the crop spans scale[0] * 200 image px over input_size[0] input px.
        px_per_input_px.append(scales[:, 0].astype(np.float64) * 200.0 / input_size[0])
        areas.extend(float(a.get("area") or a["bbox"][2] * a["bbox"][3]) for a in found)
        labeled.extend(np.asarray(a["keypoints"], np.float64).reshape(-1, 3)[:, 2] > 0 if a.get("keypoints") else None
                       for a in found)
    if not crops:
        raise FileNotFoundError(f"no reference people in {folder or reference_folder()[0]}")
    mask = None if any(row is None for row in labeled) else np.stack(labeled)
    return ReferencePeople(np.concatenate(crops, axis=0), np.concatenate(px_per_input_px), np.asarray(areas),
                           mask, str(folder or reference_folder()[0]))


def reference_crops(input_size: tuple[int, int], color_rgb: bool = True, folder: Path | None = None,
                    annotations_name: str = REFERENCE_ANNOTATIONS) -> np.ndarray:
    """(2N, 3, h, w) float32 normalised crops of the N reference people, then their mirror images (int8 calibration)."""
    crops = reference_people(input_size, color_rgb, folder, annotations_name).crops
    return np.concatenate([crops, np.ascontiguousarray(crops[..., ::-1])], axis=0)


def keypoints_from_heatmaps(heatmaps: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """(N, J, h, w) heatmaps -> (N, J, 2) float32 keypoints in network input px (argmax + quarter offset)."""
    coords, _ = get_max_preds(heatmaps)
    coords = quarter_offset(heatmaps, coords)
    stride = np.array([input_size[0] / heatmaps.shape[3], input_size[1] / heatmaps.shape[2]], np.float32)
    return coords * stride


def keypoint_sigmas(num_keypoints: int) -> np.ndarray:
    """(J,) OKS sigmas: COCO's for 17 keypoints, else `FALLBACK_SIGMA` for each."""
    return coco_sigmas() if num_keypoints == 17 else np.full(num_keypoints, FALLBACK_SIGMA)


def oks_to_reference(reference_xy: np.ndarray, xy: np.ndarray, people: ReferencePeople) -> np.ndarray:
    """(N,) OKS of each person's keypoints `xy` against `reference_xy` (both (N, J, 2) network input px), COCO's formula.

    The reference plays the ground truth: exp(-d² / (2 · area · (2σ)²)) averaged over the labeled keypoints,
    with d in image px.
    """
    distance_sq = (np.linalg.norm(np.asarray(xy, np.float64) - np.asarray(reference_xy, np.float64), axis=-1)
                   * people.px_per_input_px[:, None]) ** 2
    variances = (2 * keypoint_sigmas(distance_sq.shape[1])) ** 2
    similarity = np.exp(-distance_sq / variances / (people.areas[:, None] + np.spacing(1)) / 2)
    weights = np.ones_like(similarity) if people.labeled is None else people.labeled.astype(np.float64)
    return (similarity * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1)


def agreement(reference_xy: np.ndarray, xy: np.ndarray, people: ReferencePeople | None = None) -> dict[str, float]:
    """How close keypoints `xy` are to `reference_xy` ((N, J, 2) network input px).

    Always: mean and max displacement (network input px), share within 2 px. With `people` (the N people the
    keypoints are of): mean and min OKS per person (`oks_mean`, `oks_min`), the gate's measure.
    """
    distance = np.linalg.norm(np.asarray(xy, np.float64) - np.asarray(reference_xy, np.float64), axis=-1)
    metrics = {"mean_px": float(distance.mean()), "max_px": float(distance.max()),
               "within_2px": float((distance <= 2.0).mean()), "keypoints": int(distance.size)}
    if people is not None:
        oks = oks_to_reference(reference_xy, xy, people)
        metrics.update(oks_mean=float(oks.mean()), oks_min=float(oks.min()), people=int(len(oks)))
    return metrics


def agrees(metrics: dict[str, float], oks_min: float = OKS_MIN) -> bool:
    """True when `agreement` metrics (with people) reach the gate: mean OKS to eager >= `oks_min`."""
    return metrics["oks_mean"] >= oks_min
