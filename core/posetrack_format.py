"""Read and write PoseTrack annotation and prediction files (2017 and 2018).

Two on-disk formats exist, for ground truth and predictions alike:

* PoseTrack 2017, "annolist": one entry per frame, people in `annorect`,
  joints as `{"id": [j], "x": [x], "y": [y], "score": [s]}` with poseval's 15
  joint ids (`POSEVAL_JOINT_NAMES`), the head box as `x1, y1, x2, y2`.
* PoseTrack 2018, COCO-like: `images`, `annotations` (`keypoints` as K x
  [x, y, v], `scores` K, `track_id`, `bbox_head` xywh) and one `person`
  category whose `keypoints` names map the K joints onto poseval's 15 by name.

Both are read into the same in-memory form (`PoseTrackVideo` / `PoseTrackFrame`)
with poseval's conversion rules (its convert.py):
a 2018 joint is missing only when x == 0, y == 0 and v == 0; a joint without a
score gets `MISSING_SCORE`; ears and other names outside the 15 are dropped;
2018 images are grouped into videos by the sequence number in their folder name
(`<seq>_<mpii|bonn|...>_<split>`), as poseval's converter does. Every video of
a multi-video file is returned; the evaluator decides which it uses (poseval
uses only the first). A GT person without a head box is read (head box NaN):
poseval only needs it, and fails without it, when the frame has predictions,
so the evaluator checks it there. Malformed files raise `PoseTrackFormatError`
naming the file and the field.

Coordinates are image pixels as written in the file (x right, y down).
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.io import write_json_atomic
from core.skeletons import COCO_KEYPOINT_NAMES, POSETRACK_KEYPOINT_NAMES

logger = logging.getLogger(__name__)

# poseval's internal joint ids 0..14 (its `Joint` class; 12 "neck" is PoseTrack18 "head_bottom").
# "Joint" is poseval's word; this module and evaluation.posetrack mirror poseval,
# so they keep it for poseval's 15-point layout and say "keypoint" for the files' K.
POSEVAL_JOINT_NAMES: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    "head_bottom", "nose", "head_top",
)
NUM_JOINTS = len(POSEVAL_JOINT_NAMES)

# The 17 keypoint names of PoseTrack18 files, in file order (ears are never annotated).
POSETRACK18_KEYPOINT_NAMES: tuple[str, ...] = POSETRACK_KEYPOINT_NAMES

# COCO's 17 keypoints (COCO_KEYPOINT_NAMES). Eyes are not PoseTrack's
# head_bottom/head_top, so a COCO model's output maps onto PoseTrack18 with those
# two keypoints (and the ears) missing.

# poseval's fallback score for a predicted joint without one (eval_helpers.MIN_SCORE).
MISSING_SCORE = -9999.0

_POSEVAL_ID = {name: index for index, name in enumerate(POSEVAL_JOINT_NAMES)}


class PoseTrackFormatError(ValueError):
    """A PoseTrack file that cannot be read; the message names the file and the field."""


@dataclass
class PoseTrackFrame:
    """The people of one frame, in poseval's 15-joint layout.

    Attributes:
        file_name: the image path as written in the file (`images[].file_name`
            or `annolist[].image[0].name`).
        image_id: `images[].id` (2018); None for 2017 files.
        is_labeled: the file's `is_labeled` flag, None when absent. poseval never
            reads it; the clean mode does.
        num_annotations: people listed for this frame in the file, including
            those without any joint structure (poseval drops a frame only when
            this is 0).
        keypoints: (N, 15, 2) float64 x, y in image pixels; NaN where absent.
        present: (N, 15) bool, joint annotated / predicted.
        scores: (N, 15) float64 per-joint score (predictions); `MISSING_SCORE`
            where the file gives none, NaN where the joint is absent.
        head_boxes: (N, 4) float64 head box x1, y1, x2, y2 in pixels (ground
            truth; NaN when the person has none).
        track_ids: (N,) int64; meaningless where `has_track_ids` is False.
        has_track_ids: every person of the frame carries a track id.
        ignore_regions: polygons, each (K, 2) float64 x, y vertices.
    """

    file_name: str
    image_id: int | None
    is_labeled: bool | None
    num_annotations: int
    keypoints: np.ndarray
    present: np.ndarray
    scores: np.ndarray
    head_boxes: np.ndarray
    track_ids: np.ndarray
    has_track_ids: bool = True
    ignore_regions: list[np.ndarray] = field(default_factory=list)

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])

    @classmethod
    def empty(cls, file_name: str = "", image_id: int | None = None) -> "PoseTrackFrame":
        return cls(file_name, image_id, None, 0, np.zeros((0, NUM_JOINTS, 2)), np.zeros((0, NUM_JOINTS), bool),
                   np.zeros((0, NUM_JOINTS)), np.zeros((0, 4)), np.zeros((0,), np.int64))


@dataclass
class PoseTrackVideo:
    """One video of a PoseTrack file: its frames in file order.

    Attributes:
        name: the frame folder name (e.g. `000342_mpii_test`), from the image paths.
        source: the file it was read from.
        format: "2017" or "2018".
        frames: frames in the order the file lists them.
    """

    name: str
    source: Path
    format: str
    frames: list[PoseTrackFrame]


# ---------------------------------------------------------------------------- reading


def read_posetrack_file(path: str | os.PathLike, *, ground_truth: bool) -> list[PoseTrackVideo]:
    """Read every video of a PoseTrack 2017 or 2018 JSON file.

    Args:
        path: the JSON file.
        ground_truth: True for annotations (ignore regions read), False for
            predictions (track ids must be unique within a frame; required in
            2018 files, as poseval requires them).

    Returns:
        The videos in order of first appearance (one for 2017 files).

    Raises:
        FileNotFoundError: the file does not exist.
        PoseTrackFormatError: the file is not valid JSON or a field is malformed;
            the message names the file and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PoseTrack file not found: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise PoseTrackFormatError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise PoseTrackFormatError(f"{path}: expected a JSON object with 'annolist' or 'images', got {type(data).__name__}")
    if "annolist" in data:
        return [_read_annolist(path, data["annolist"], ground_truth)]
    if "images" in data:
        return _read_coco_style(path, data, ground_truth)
    raise PoseTrackFormatError(f"{path}: neither 'annolist' (PoseTrack 2017) nor 'images' (PoseTrack 2018) found")


def _fail(path: Path, where: str, problem: str) -> PoseTrackFormatError:
    return PoseTrackFormatError(f"{path}: {where}: {problem}")


def _number(path: Path, where: str, value, *, allow_none: bool = False) -> float:
    """A JSON number (bools rejected); 2017 files wrap scalars in one-element lists."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None and allow_none:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, where, f"expected a number, got {value!r}")
    return value


def _integer(path: Path, where: str, value) -> int:
    number = _number(path, where, value)
    if isinstance(number, float) and not number.is_integer():
        raise _fail(path, where, f"expected an integer, got {number!r}")
    return int(number)


def _video_name(file_name: str) -> str:
    return os.path.basename(os.path.dirname(file_name))


def _video_key(file_name: str) -> str:
    """poseval's video id of a 2018 image: the folder name up to its first '_' (convert.py, Video.from_new)."""
    return _video_name(file_name).split("_")[0]


def _polygon(path: Path, where: str, xs, ys) -> np.ndarray:
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise _fail(path, where, "expected two coordinate lists of equal length")
    vertices = np.array([[_number(path, where, x), _number(path, where, y)] for x, y in zip(xs, ys)], np.float64)
    return vertices.reshape(-1, 2)


def _frame_from_people(
    file_name: str,
    image_id: int | None,
    is_labeled: bool | None,
    num_annotations: int,
    people: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int | None]],
    ignore_regions: list[np.ndarray],
) -> PoseTrackFrame:
    """people: per person (keypoints (15,2), present (15,), scores (15,), head box (4,), track id or None)."""
    if not people:
        frame = PoseTrackFrame.empty(file_name, image_id)
        frame.is_labeled, frame.num_annotations, frame.ignore_regions = is_labeled, num_annotations, ignore_regions
        return frame
    track_ids = [person[4] for person in people]
    return PoseTrackFrame(
        file_name=file_name,
        image_id=image_id,
        is_labeled=is_labeled,
        num_annotations=num_annotations,
        keypoints=np.stack([person[0] for person in people]),
        present=np.stack([person[1] for person in people]),
        scores=np.stack([person[2] for person in people]),
        head_boxes=np.stack([person[3] for person in people]),
        track_ids=np.array([-1 if t is None else t for t in track_ids], np.int64),
        has_track_ids=all(t is not None for t in track_ids),
        ignore_regions=ignore_regions,
    )


def _read_coco_style(path: Path, data: dict, ground_truth: bool) -> list[PoseTrackVideo]:
    categories = data.get("categories")
    if not isinstance(categories, list) or len(categories) != 1 or not isinstance(categories[0], dict):
        raise _fail(path, "categories", "expected exactly one category (named 'person'); poseval requires it in predictions too")
    category = categories[0]
    if category.get("name") != "person":
        raise _fail(path, "categories[0].name", f"expected 'person', got {category.get('name')!r}")
    names = category.get("keypoints")
    if not isinstance(names, list) or len(names) not in (15, 17):
        raise _fail(path, "categories[0].keypoints", "expected a list of 15 or 17 keypoint names")
    if len(set(names)) != len(names):
        raise _fail(path, "categories[0].keypoints", "duplicate keypoint names")
    missing = [name for name in POSEVAL_JOINT_NAMES if name not in names]
    if missing:
        raise _fail(path, "categories[0].keypoints", f"PoseTrack joints missing: {', '.join(missing)}")
    # file keypoint index -> poseval joint id, for the names poseval knows.
    file_index = np.array([i for i, name in enumerate(names) if name in _POSEVAL_ID], np.int64)
    joint_id = np.array([_POSEVAL_ID[names[i]] for i in file_index], np.int64)
    num_keypoints = len(names)

    images = data["images"]
    if not isinstance(images, list):
        raise _fail(path, "images", "expected a list")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise _fail(path, "annotations", "expected a list")

    by_image: dict[int, list[int]] = {}
    image_ids: list[int] = []
    for index, image in enumerate(images):
        if not isinstance(image, dict):
            raise _fail(path, f"images[{index}]", "expected an object")
        if "id" not in image:
            raise _fail(path, f"images[{index}].id", "missing")
        image_id = _integer(path, f"images[{index}].id", image["id"])
        if image_id in by_image:
            raise _fail(path, f"images[{index}].id", f"duplicate image id {image_id}")
        if not isinstance(image.get("file_name"), str):
            raise _fail(path, f"images[{index}].file_name", "missing or not a string")
        by_image[image_id] = []
        image_ids.append(image_id)
    orphans = 0
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise _fail(path, f"annotations[{index}]", "expected an object")
        if "image_id" not in annotation:
            raise _fail(path, f"annotations[{index}].image_id", "missing")
        image_id = annotation["image_id"]
        if type(image_id) is not int:  # the common case needs no conversion
            image_id = _integer(path, f"annotations[{index}].image_id", image_id)
        if image_id in by_image:
            by_image[image_id].append(index)
        else:
            orphans += 1
    if orphans:
        logger.warning("%s: %d annotations refer to image ids not in 'images'; ignored (as poseval does)", path, orphans)

    people = _coco_people(path, annotations, num_keypoints, file_index, joint_id, ground_truth)
    videos: dict[str, PoseTrackVideo] = {}
    for image_index, (image, image_id) in enumerate(zip(images, image_ids)):
        members = by_image[image_id]
        regions = []
        if ground_truth and "ignore_regions_x" in image and "ignore_regions_y" in image:
            xs_all, ys_all = image["ignore_regions_x"], image["ignore_regions_y"]
            if not isinstance(xs_all, list) or not isinstance(ys_all, list) or len(xs_all) != len(ys_all):
                raise _fail(path, f"images[{image_index}].ignore_regions_x/y", "expected two lists of polygons of equal length")
            regions = [_polygon(path, f"images[{image_index}].ignore_regions", xs, ys) for xs, ys in zip(xs_all, ys_all)]
        track_ids = people["track_ids"][members]
        if not ground_truth and len(np.unique(track_ids)) != len(track_ids):
            raise _fail(path, f"images[{image_index}] ({image['file_name']})", "track ids are not unique within the frame")
        is_labeled = image.get("is_labeled")
        frame = PoseTrackFrame(
            file_name=image["file_name"],
            image_id=image_id,
            is_labeled=None if is_labeled is None else bool(is_labeled),
            num_annotations=len(members),
            keypoints=people["keypoints"][members],
            present=people["present"][members],
            scores=people["scores"][members],
            head_boxes=people["head_boxes"][members],
            track_ids=track_ids,
            ignore_regions=regions,
        )
        key = _video_key(image["file_name"])
        if key not in videos:
            videos[key] = PoseTrackVideo(_video_name(image["file_name"]), path, "2018", [])
        videos[key].frames.append(frame)
    return list(videos.values())


def _coco_people(path: Path, annotations: list, num_keypoints: int, file_index: np.ndarray, joint_id: np.ndarray,
                 ground_truth: bool) -> dict[str, np.ndarray]:
    """All annotations of a 2018 file as arrays in poseval's layout (see `PoseTrackFrame`), one row per annotation.

    One numpy conversion per field for the whole file; a field that fails to
    convert is then located annotation by annotation to name it in the error.
    """
    count = len(annotations)
    for index, annotation in enumerate(annotations):
        keypoints = annotation.get("keypoints")
        if not isinstance(keypoints, list) or len(keypoints) != 3 * num_keypoints:
            raise _fail(path, f"annotations[{index}].keypoints", f"expected {3 * num_keypoints} numbers ({num_keypoints} x [x, y, v])")
        if annotation.get("track_id") is None:
            raise _fail(path, f"annotations[{index}].track_id", "missing (poseval requires it, for predictions too)")
        scores = annotation.get("scores")
        # poseval reads scores[k] for each keypoint k: a longer list works there, a shorter one fails
        if scores and (not isinstance(scores, list) or len(scores) < num_keypoints):
            raise _fail(path, f"annotations[{index}].scores", f"expected {num_keypoints} per-joint scores")
        box = annotation.get("bbox_head")
        if box is not None and (not isinstance(box, list) or len(box) != 4):
            raise _fail(path, f"annotations[{index}].bbox_head", "expected [x, y, w, h]")

    def convert(field: str, rows: list) -> np.ndarray:
        try:
            array = np.array(rows)
        except (TypeError, ValueError):
            array = None
        if array is not None and array.dtype.kind in "iuf":
            return array.astype(np.float64)
        # a string, a bool or a null somewhere: name it (nulls are allowed, as NaN, in scores only)
        for index, row in enumerate(rows):
            for value in row:
                if value is not None or field != "scores":
                    _number(path, f"annotations[{index}].{field}", value)
        return np.array(rows, np.float64)

    triples = convert("keypoints", [a["keypoints"] for a in annotations]).reshape(count, num_keypoints, 3)[:, file_index]
    present_file = ~((triples[..., 0] == 0) & (triples[..., 1] == 0) & (triples[..., 2] == 0))
    keypoints = np.full((count, NUM_JOINTS, 2), np.nan)
    present = np.zeros((count, NUM_JOINTS), bool)
    keypoints[:, joint_id] = np.where(present_file[..., None], triples[..., :2], np.nan)
    present[:, joint_id] = present_file

    # poseval: a missing or empty `scores` list means "no scores" (fallback score)
    has_scores = [bool(a.get("scores")) for a in annotations]
    if not ground_truth and not all(has_scores):
        logger.warning("%s: predictions without per-joint 'scores'; using %g (poseval's fallback)", path, MISSING_SCORE)
    score_rows = [a["scores"][:num_keypoints] if has else [MISSING_SCORE] * num_keypoints
                  for a, has in zip(annotations, has_scores)]
    scores = np.full((count, NUM_JOINTS), np.nan)
    scores[:, joint_id] = convert("scores", score_rows).reshape(count, num_keypoints)[:, file_index]
    scores[~present] = np.nan

    boxes = convert("bbox_head", [a.get("bbox_head") or [math.nan] * 4 for a in annotations]).reshape(count, 4)
    # x2 = x + w, as poseval's converter computes it
    head_boxes = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    track_ids = [a["track_id"] for a in annotations]
    if not all(type(t) is int for t in track_ids):
        track_ids = [_integer(path, f"annotations[{i}].track_id", t) for i, t in enumerate(track_ids)]
    track_ids = np.array(track_ids, np.int64)
    return {"keypoints": keypoints, "present": present, "scores": scores, "head_boxes": head_boxes,
            "track_ids": track_ids.reshape(count)}


def _read_annolist(path: Path, annolist, ground_truth: bool) -> PoseTrackVideo:
    if not isinstance(annolist, list):
        raise _fail(path, "annolist", "expected a list of frames")
    frames = []
    warned_scores = False
    for frame_index, entry in enumerate(annolist):
        where_frame = f"annolist[{frame_index}]"
        if not isinstance(entry, dict):
            raise _fail(path, where_frame, "expected an object")
        image = entry.get("image")
        if not isinstance(image, list) or not image or not isinstance(image[0], dict) or not isinstance(image[0].get("name"), str):
            raise _fail(path, f"{where_frame}.image", "expected [{'name': <image path>}]")
        rects = entry.get("annorect", [])
        if not isinstance(rects, list):
            raise _fail(path, f"{where_frame}.annorect", "expected a list")
        people = []
        frame_track_ids = []
        for rect_index, rect in enumerate(rects):
            where = f"{where_frame}.annorect[{rect_index}]"
            if not isinstance(rect, dict):
                raise _fail(path, where, "expected an object")
            if "track_id" in rect:
                frame_track_ids.append(_integer(path, f"{where}.track_id", rect["track_id"]))
            annopoints = rect.get("annopoints")
            # poseval keeps only people with annopoints[0]["point"] (rectHasPoints).
            if not (isinstance(annopoints, list) and annopoints and isinstance(annopoints[0], dict)
                    and annopoints[0] and "point" in annopoints[0]):
                continue
            points = annopoints[0]["point"] or []
            if not isinstance(points, list):
                raise _fail(path, f"{where}.annopoints[0].point", "expected a list")
            xy = np.full((NUM_JOINTS, 2), np.nan)
            has = np.zeros(NUM_JOINTS, bool)
            scores = np.full(NUM_JOINTS, np.nan)
            for point_index, point in enumerate(points):
                where_point = f"{where}.annopoints[0].point[{point_index}]"
                if not isinstance(point, dict):
                    raise _fail(path, where_point, "expected an object")
                if "id" not in point:
                    raise _fail(path, f"{where_point}.id", "missing")
                joint = _integer(path, f"{where_point}.id", point["id"])
                if not 0 <= joint < NUM_JOINTS:
                    raise _fail(path, f"{where_point}.id", f"joint id {joint} outside 0..{NUM_JOINTS - 1}")
                if has[joint]:
                    raise _fail(path, f"{where_point}.id", f"joint id {joint} appears twice")
                for key in ("x", "y"):
                    if key not in point:
                        raise _fail(path, f"{where_point}.{key}", "missing")
                xy[joint] = (_number(path, f"{where_point}.x", point["x"]), _number(path, f"{where_point}.y", point["y"]))
                has[joint] = True
                if "score" in point:
                    scores[joint] = _number(path, f"{where_point}.score", point["score"], allow_none=True)
                else:
                    scores[joint] = MISSING_SCORE
                    if not ground_truth and not warned_scores:
                        logger.warning("%s: predicted joints without 'score'; using %g (poseval's fallback)", path, MISSING_SCORE)
                        warned_scores = True
            head_box = np.full(4, np.nan)
            if all(key in rect for key in ("x1", "y1", "x2", "y2")):
                head_box = np.array([_number(path, f"{where}.{key}", rect[key]) for key in ("x1", "y1", "x2", "y2")], np.float64)
            track_id = None
            if "track_id" in rect:
                track_id = _integer(path, f"{where}.track_id", rect["track_id"])
            people.append((xy, has, scores, head_box, track_id))
        if not ground_truth and len(set(frame_track_ids)) != len(frame_track_ids):
            raise _fail(path, f"{where_frame} ({image[0]['name']})", "track ids are not unique within the frame")

        regions = []
        if ground_truth and entry.get("ignore_regions"):
            for region_index, region in enumerate(entry["ignore_regions"]):
                where_region = f"{where_frame}.ignore_regions[{region_index}].point"
                points = region.get("point") if isinstance(region, dict) else None
                if not isinstance(points, list):
                    raise _fail(path, where_region, "expected a list of points")
                regions.append(_polygon(path, where_region, [p.get("x") for p in points], [p.get("y") for p in points]))
        is_labeled = entry.get("is_labeled")
        if isinstance(is_labeled, list):
            is_labeled = is_labeled[0] if is_labeled else None
        frame = _frame_from_people(image[0]["name"], None, None if is_labeled is None else bool(is_labeled),
                                   len(rects), people, regions)
        frames.append(frame)
    name = _video_name(frames[0].file_name) if frames else path.stem
    return PoseTrackVideo(name or path.stem, path, "2017", frames)


# ---------------------------------------------------------------------------- writing


def _prediction_arrays(poses) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(keypoints (N,K,2), scores (N,K), track_ids (N,), boxes (N,4) xyxy or None) from TrackedPoses or a tuple."""
    if hasattr(poses, "track_ids") and hasattr(poses, "keypoints"):
        return (np.asarray(poses.keypoints, np.float64), np.asarray(poses.scores, np.float64),
                np.asarray(poses.track_ids, np.int64), np.asarray(poses.boxes, np.float64))
    if len(poses) == 3:
        keypoints, scores, track_ids = poses
        boxes = None
    elif len(poses) == 4:
        keypoints, scores, track_ids, boxes = poses
        boxes = None if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
    else:
        raise ValueError("poses must be TrackedPoses or (keypoints, scores, track_ids[, boxes_xyxy])")
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim != 3:  # flat [x, y, x, y, ...] rows; an (N, K, 2) array (N = 0 too) is used as is
        keypoints = keypoints.reshape(len(track_ids), -1, 2)
    return keypoints, np.asarray(scores, np.float64).reshape(keypoints.shape[:2]), np.asarray(track_ids, np.int64), boxes


def keypoint_layout_of(keypoint_names) -> str:
    """The `keypoint_layout` ("posetrack18" or "coco") of a model's keypoint names; ValueError for any other."""
    names = tuple(keypoint_names)
    if names == POSETRACK18_KEYPOINT_NAMES:
        return "posetrack18"
    if names == COCO_KEYPOINT_NAMES:
        return "coco"
    raise ValueError(f"PoseTrack18 output needs COCO's or PoseTrack18's 17 keypoints, the model has {len(names)}: "
                     f"{', '.join(names[:4])}...")


def posetrack18_prediction_document(
    frames: Iterable[tuple[Mapping, object]],
    *,
    keypoint_layout: str = "posetrack18",
    score_threshold: float | None = None,
    person_ids: bool = False,
) -> dict:
    """Build a PoseTrack18 prediction document (see `write_posetrack18_predictions`).

    `person_ids`: also write `person_id` = `track_id` on every person (the field
    PoseTrack21's re-identification protocol reads; its kit's other metrics ignore it).
    """
    if keypoint_layout == "posetrack18":
        source_names = POSETRACK18_KEYPOINT_NAMES
    elif keypoint_layout == "coco":
        source_names = COCO_KEYPOINT_NAMES
    else:
        raise ValueError(f"keypoint_layout must be 'posetrack18' or 'coco', got {keypoint_layout!r}")
    # output position -> input position, or -1 where the model has no such joint
    source_index = np.array([source_names.index(n) if n in source_names else -1 for n in POSETRACK18_KEYPOINT_NAMES])
    # poseval does not evaluate ears: write them missing so they never count as predictions.
    source_index[[POSETRACK18_KEYPOINT_NAMES.index("left_ear"), POSETRACK18_KEYPOINT_NAMES.index("right_ear")]] = -1
    images, annotations = [], []
    for image_info, poses in frames:
        if "file_name" not in image_info or "id" not in image_info:
            raise ValueError(f"image metadata needs 'file_name' and 'id', got keys {sorted(image_info)}")
        images.append(dict(image_info))
        keypoints, scores, track_ids, boxes = _prediction_arrays(poses)
        if keypoints.shape[1] != len(source_names):
            raise ValueError(f"{keypoint_layout} layout needs {len(source_names)} keypoints, got {keypoints.shape[1]}")
        if len(np.unique(track_ids)) != len(track_ids):
            raise ValueError(f"{image_info['file_name']}: track ids not unique within the frame: {track_ids.tolist()}")
        for person in range(len(track_ids)):
            out_xy = np.zeros((len(POSETRACK18_KEYPOINT_NAMES), 2))
            out_score = np.zeros(len(POSETRACK18_KEYPOINT_NAMES))
            valid = source_index >= 0
            out_xy[valid] = keypoints[person, source_index[valid]]
            out_score[valid] = scores[person, source_index[valid]]
            keep = valid & np.isfinite(out_xy).all(axis=1) & np.isfinite(out_score)
            if score_threshold is not None:
                keep &= out_score >= score_threshold
            triples = np.zeros((len(POSETRACK18_KEYPOINT_NAMES), 3))
            # 0, 0, 0 is the only way to say "no joint" to poseval; v = 1 for the rest.
            triples[keep, :2] = out_xy[keep]
            triples[keep, 2] = 1.0
            annotation = {
                "id": len(annotations),
                "image_id": image_info["id"],
                "category_id": 1,
                "track_id": int(track_ids[person]),
                **({"person_id": int(track_ids[person])} if person_ids else {}),
                "keypoints": [float(v) for v in triples.ravel()],
                "scores": [float(s) if k else 0.0 for s, k in zip(out_score, keep)],
            }
            if boxes is not None and len(boxes) > person:
                x1, y1, x2, y2 = (float(v) for v in boxes[person])
                annotation["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            annotations.append(annotation)
    category = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(POSETRACK18_KEYPOINT_NAMES)}
    return {"images": images, "annotations": annotations, "categories": [category]}


def posetrack17_prediction_document(
    frames: Iterable[tuple[Mapping, object]],
    *,
    keypoint_layout: str = "posetrack18",
    score_threshold: float | None = None,
) -> dict:
    """The same predictions as `posetrack18_prediction_document`, as a PoseTrack 2017 annolist.

    For 2017 GT; `image_info` needs only `file_name` (the GT image name).
    """
    frames = list(frames)
    numbered = [({**dict(info), "id": info.get("id", index)}, poses) for index, (info, poses) in enumerate(frames)]
    document = posetrack18_prediction_document(numbered, keypoint_layout=keypoint_layout, score_threshold=score_threshold)
    joint_of = [_POSEVAL_ID.get(name) for name in POSETRACK18_KEYPOINT_NAMES]
    by_image: dict = {}
    for annotation in document["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    annolist = []
    for image in document["images"]:
        rects = []
        for annotation in by_image.get(image["id"], []):
            triples = np.array(annotation["keypoints"]).reshape(-1, 3)
            points = [{"id": [joint], "x": [float(x)], "y": [float(y)], "score": [float(score)]}
                      for joint, (x, y, v), score in zip(joint_of, triples, annotation["scores"])
                      if joint is not None and not (x == 0 and y == 0 and v == 0)]
            rects.append({"track_id": [annotation["track_id"]], "annopoints": [{"point": points}]})
        annolist.append({"image": [{"name": image["file_name"]}], "annorect": rects})
    return {"annolist": annolist}


def write_posetrack18_predictions(
    path: str | os.PathLike,
    frames: Iterable[tuple[Mapping, object]],
    *,
    keypoint_layout: str = "posetrack18",
    score_threshold: float | None = None,
) -> Path:
    """Write one video's predictions as a poseval-ready PoseTrack18 JSON file.

    Args:
        path: output file (written to a temporary file first, then renamed, so an
            interrupted run never leaves a truncated file behind).
        frames: per frame, `(image_info, poses)`. `image_info` is the GT image
            entry (at least `file_name` and `id`; every key is copied). List every
            GT image of the video, in GT order, including frames without people:
            poseval aligns frames by position. `poses` is a `TrackedPoses` or a
            tuple `(keypoints (N, K, 2) px, scores (N, K), track_ids (N,)[, boxes
            (N, 4) xyxy px])`.
        keypoint_layout: "posetrack18" (K = 17 in `POSETRACK18_KEYPOINT_NAMES`
            order) or "coco" (K = 17 COCO joints; eyes have no PoseTrack
            counterpart and are written missing, so head_bottom and head_top are
            not predicted).
        score_threshold: write joints scoring below it as missing (0, 0, 0).
            poseval's MOT counts every written joint; AP prefers all of them.

    Returns:
        The path written.
    """
    document = posetrack18_prediction_document(frames, keypoint_layout=keypoint_layout, score_threshold=score_threshold)
    return write_json_atomic(path, document)


def scan_json_files(folder: str | os.PathLike) -> list[Path]:
    """`*.json` files of a folder in directory order, like poseval's `glob`."""
    return [Path(p) for p in glob.glob(os.path.join(os.fspath(folder), "*.json"))]


__all__ = [
    "POSEVAL_JOINT_NAMES", "POSETRACK18_KEYPOINT_NAMES", "COCO_KEYPOINT_NAMES", "MISSING_SCORE", "NUM_JOINTS",
    "PoseTrackFormatError", "PoseTrackFrame", "PoseTrackVideo", "read_posetrack_file", "keypoint_layout_of",
    "posetrack17_prediction_document", "posetrack18_prediction_document", "write_posetrack18_predictions", "write_json_atomic",
    "scan_json_files",
]
