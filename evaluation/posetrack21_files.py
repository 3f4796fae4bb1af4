"""Read PoseTrack21 ground-truth and prediction files the way the official kit reads them.

PoseTrack21 (Doering et al., CVPR 2022) keeps PoseTrack 2018's COCO-like files:
one JSON per sequence (`posetrack_data/<split>/<seq>.json`) with `images`
(`id`, `file_name`, `is_labeled`, `ignore_regions_x`, `ignore_regions_y`) and
`annotations` (`image_id`, `track_id`, `keypoints` as 17 x [x, y, v], `bbox_head`
x, y, w, h; predictions add a per-keypoint `scores` list). The official kit
(anDoer/PoseTrack21, `eval/posetrack21`, `datasets/posetrack.py`) reads them
with these rules, which this module reproduces (docs/POSETRACK21.md lists them):

* keypoint slots 3 and 4 (the ears) are dropped, whatever the file's category
  names say, leaving the kit's 15 joints (`JOINT_NAMES`);
* a joint is present when x > 0 and y > 0; the visibility flag is never read;
* a prediction without `scores` gets -9999 for every joint; when every keypoint
  number of a frame's predictions is a JSON integer the kit's array is integer
  and the scores it copies into it are truncated toward zero
  (`PredictionFrame.integer_keypoints` records this; the scorer applies it);
* head size = 0.6 x the head box diagonal.

Arrays are float64 image pixels (x right, y down) in the kit's joint order.
Malformed files raise `PoseTrack21FormatError` naming the file, the image and
the annotation.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The kit's joint names, in its order (the 17 PoseTrack keypoints without slots 3, 4).
JOINT_NAMES: tuple[str, ...] = ("Nose", "Neck", "Head", "LS", "RS", "LE", "RE", "LW", "RW", "LH", "RH", "LK", "RK",
                                "LA", "RA")
NUM_JOINTS = len(JOINT_NAMES)
NUM_FILE_KEYPOINTS = 17
DROPPED_SLOTS = (3, 4)
_KEPT_SLOTS = np.array([k for k in range(NUM_FILE_KEYPOINTS) if k not in DROPPED_SLOTS])
# The kit's score for every joint of a prediction without `scores`.
MISSING_SCORE = -9999.0
HEAD_SIZE_FACTOR = 0.6


class PoseTrack21FormatError(ValueError):
    """A PoseTrack21 file that cannot be scored; the message names the file and the field."""


@dataclass(frozen=True)
class People:
    """The people of one frame.

    Attributes:
        keypoints: (N, 15, 2) float64 x, y pixels, kit joint order; the kit's
            "absent" joints are kept as written (present = x > 0 and y > 0).
        scores: (N, 15) float64 per-joint scores (-9999 without `scores`; GT: unused).
        track_ids: (N,) int64, None when some person has no integer `track_id`.
        head_sizes: (N,) float64 pixels (ground truth), None for predictions.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray | None
    head_sizes: np.ndarray | None = None

    @property
    def present(self) -> np.ndarray:
        """(N, 15) bool: the kit's test for an annotated / predicted joint."""
        return (self.keypoints[..., 0] > 0) & (self.keypoints[..., 1] > 0)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def subset(self, keep: np.ndarray) -> "People":
        return People(self.keypoints[keep], self.scores[keep],
                      None if self.track_ids is None else self.track_ids[keep],
                      None if self.head_sizes is None else self.head_sizes[keep])

    @staticmethod
    def empty(ground_truth: bool) -> "People":
        return People(np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS)), np.zeros(0, np.int64),
                      np.zeros(0) if ground_truth else None)


@dataclass(frozen=True)
class GroundTruthFrame:
    """One image of a GT sequence.

    Attributes:
        image_id: `images[].id`.
        is_labeled: the image's `is_labeled` flag; the kit scores only these frames.
        ignore_regions: polygons, each (K, 2) float64 x, y vertices.
        has_ignore_entry: the image lists at least one ignore region, even an
            empty one: the kit's ignore-region pass (which also drops people
            without any joint) runs only then.
        people: the annotated people (head sizes set).
    """

    image_id: int
    is_labeled: bool
    ignore_regions: tuple[np.ndarray, ...]
    has_ignore_entry: bool
    people: People


@dataclass(frozen=True)
class GroundTruthSequence:
    name: str
    source: Path
    frames: list[GroundTruthFrame]


@dataclass(frozen=True)
class PredictionSequence:
    """Predicted people per image id, and whether the kit would read that frame as integers.

    Attributes:
        frames: image id -> people of that image (image ids without people are absent).
        integer_keypoints: image ids whose predicted keypoint numbers are all JSON integers.
        image_ids: the file's `images[].id` list in file order (None without `images`).
        has_track_ids: every predicted person carries an integer `track_id`.
    """

    source: Path
    frames: dict[int, People]
    integer_keypoints: frozenset[int]
    image_ids: tuple[int, ...] | None
    has_track_ids: bool


def _fail(path: Path, where: str, problem: str) -> PoseTrack21FormatError:
    return PoseTrack21FormatError(f"{path}: {where}: {problem}")


def _load_json(path: Path) -> dict:
    # Not core.io.read_json: core.io imports OpenCV, 37 MB of the scorer's import memory for nothing it uses.
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise PoseTrack21FormatError(f"{path}: not valid JSON ({error})") from None
    except UnicodeDecodeError as error:
        raise PoseTrack21FormatError(f"{path}: not UTF-8 text ({error.reason})") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations", []), list):
        raise PoseTrack21FormatError(f"{path}: expected a PoseTrack21 object with 'images' and 'annotations' lists")
    return data


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _group_annotations(path: Path, annotations: list) -> dict[int, list[tuple[int, dict]]]:
    """image id -> [(annotation index, annotation)] in file order."""
    grouped: dict[int, list[tuple[int, dict]]] = defaultdict(list)
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or not _is_integer(annotation.get("image_id")):
            raise _fail(path, f"annotations[{index}]", "needs an integer 'image_id'")
        grouped[annotation["image_id"]].append((index, annotation))
    return grouped


def _numbers(path: Path, where: str, field: str, rows: list, items: list[tuple[int, dict]], length: int) -> np.ndarray:
    """np.array(rows) as the kit builds it, (N, length) and numeric, or an error naming the first bad annotation."""
    try:
        array = np.array(rows)
    except ValueError:
        array = None
    if array is None or array.dtype.kind not in "iuf" or array.shape != (len(rows), length):
        for (index, _), row in zip(items, rows):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
                raise _fail(path, f"{where}, annotations[{index}]", f"'{field}' holds a value that is not a number")
        raise _fail(path, where, f"'{field}' must be lists of {length} numbers")
    return array


def _people(path: Path, image_id: int, items: list[tuple[int, dict]], ground_truth: bool) -> tuple[People, bool]:
    """(people of one image, whether the kit's keypoint array for it is an integer array)."""
    rows, scores, ids, heads = [], [], [], []
    have_ids = True
    for index, annotation in items:
        where = f"image {image_id}, annotations[{index}]"
        keypoints = annotation.get("keypoints")
        if not isinstance(keypoints, list) or len(keypoints) != 3 * NUM_FILE_KEYPOINTS:
            raise _fail(path, where, f"'keypoints' must be a list of {3 * NUM_FILE_KEYPOINTS} numbers (17 x [x, y, v])")
        rows.append(keypoints)
        if "scores" in annotation and not ground_truth:  # the kit never reads GT scores (PoseTrack18 GT has [])
            score = annotation["scores"]
            if not isinstance(score, list) or len(score) != NUM_FILE_KEYPOINTS:
                raise _fail(path, where, f"'scores' must be a list of {NUM_FILE_KEYPOINTS} numbers")
            scores.append(score)
        else:
            scores.append([MISSING_SCORE] * NUM_FILE_KEYPOINTS)
        track_id = annotation.get("track_id")
        if _is_integer(track_id):
            if track_id < 0:
                raise _fail(path, where, f"track_id {track_id} is negative: the official kit relabels ids through an "
                                         "array indexed by id, which aliases negative ids with the largest ones; "
                                         "give every person a non-negative id")
            ids.append(track_id)
        elif ground_truth:
            raise _fail(path, where, "needs an integer 'track_id'")
        else:
            have_ids = False
        if ground_truth:
            head = annotation.get("bbox_head")
            if (not isinstance(head, list) or len(head) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in head)):
                raise _fail(path, where, "needs 'bbox_head' [x, y, w, h] (the kit normalises distances by its diagonal)")
            x1, y1, width, height = (float(v) for v in head)
            # as the kit: the diagonal of (x1, y1) -> (x1 + w, y1 + h), rounding included
            heads.append(HEAD_SIZE_FACTOR * math.sqrt(((x1 + width) - x1) ** 2 + ((y1 + height) - y1) ** 2))
    where = f"image {image_id}"
    keypoints = _numbers(path, where, "keypoints", rows, items, 3 * NUM_FILE_KEYPOINTS)
    score_array = _numbers(path, where, "scores", scores, items, NUM_FILE_KEYPOINTS)
    people = People(
        np.ascontiguousarray(keypoints.astype(np.float64).reshape(-1, NUM_FILE_KEYPOINTS, 3)[:, _KEPT_SLOTS, :2]),
        score_array.astype(np.float64)[:, _KEPT_SLOTS],
        np.asarray(ids, np.int64) if have_ids else None,
        np.asarray(heads, np.float64) if ground_truth else None,
    )
    return people, keypoints.dtype.kind in "iu"


def _regions(path: Path, image: dict, where: str) -> tuple[tuple[np.ndarray, ...], bool]:
    xs, ys = image.get("ignore_regions_x", []), image.get("ignore_regions_y", [])
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise _fail(path, where, "'ignore_regions_x' and 'ignore_regions_y' must be lists of the same length")
    polygons = []
    for k, (x, y) in enumerate(zip(xs, ys)):
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y):
            raise _fail(path, where, f"ignore region {k}: x and y must be lists of the same length")
        try:
            polygons.append(np.column_stack([np.asarray(x, np.float64), np.asarray(y, np.float64)]).reshape(-1, 2))
        except (TypeError, ValueError):
            raise _fail(path, where, f"ignore region {k}: coordinates must be numbers") from None
    return tuple(polygons), len(xs) > 0


def read_ground_truth(path: str | os.PathLike) -> GroundTruthSequence:
    """Read one PoseTrack21 GT sequence file (every image, in file order)."""
    path = Path(path)
    data = _load_json(path)
    images = data.get("images")
    if not isinstance(images, list):
        raise _fail(path, "images", "missing: a GT file lists its images")
    grouped = _group_annotations(path, data.get("annotations", []))
    frames = []
    seen: set[int] = set()
    for index, image in enumerate(images):
        where = f"images[{index}]"
        if not isinstance(image, dict) or not _is_integer(image.get("id")):
            raise _fail(path, where, "needs an integer 'id'")
        image_id = image["id"]
        if image_id in seen:
            raise _fail(path, where, f"image id {image_id} is listed twice")
        seen.add(image_id)
        if "is_labeled" not in image:
            raise _fail(path, where, "needs 'is_labeled' (it decides which frames the kit scores)")
        regions, has_entry = _regions(path, image, where)
        items = grouped.pop(image_id, [])
        people = _people(path, image_id, items, True)[0] if items else People.empty(True)
        frames.append(GroundTruthFrame(image_id, bool(image["is_labeled"]), regions, has_entry, people))
    if grouped:
        unknown = sorted(grouped)[:5]
        raise _fail(path, "annotations", f"image ids {unknown} are not in 'images'")
    return GroundTruthSequence(path.name, path, frames)


def read_predictions(path: str | os.PathLike) -> PredictionSequence:
    """Read one prediction file: people per image id (its `images` list is optional)."""
    path = Path(path)
    data = _load_json(path)
    images = data.get("images")
    image_ids = None
    if isinstance(images, list):
        image_ids = tuple(image.get("id") if isinstance(image, dict) else None for image in images)
    frames, integer = {}, set()
    has_track_ids = True
    for image_id, items in _group_annotations(path, data.get("annotations", [])).items():
        people, all_integer = _people(path, image_id, items, False)
        frames[image_id] = people
        has_track_ids = has_track_ids and people.track_ids is not None
        if all_integer:
            integer.add(image_id)
    return PredictionSequence(path, frames, frozenset(integer), image_ids, has_track_ids)


def is_posetrack21_ground_truth(path: str | os.PathLike) -> bool:
    """True when a GT file's annotations carry `person_id`, PoseTrack21's re-identification field.

    PoseTrack21 keeps PoseTrack 2018's COCO-like layout; `person_id` is what
    tells the two apart (the CLI's --benchmark flag overrides this guess).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or "annolist" in data:
        return False
    annotations = data.get("annotations") or []
    return any(isinstance(a, dict) and "person_id" in a for a in annotations[:50])
