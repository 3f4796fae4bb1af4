"""Predict and track every video of a PoseTrack split (`main.py posetrack run`, see `cli.posetrack`).

For each per-video annotation file of `DATA/annotations/SPLIT/` (PoseTrack
2018 COCO-style, or 2017 annolist), the frames listed in it are read from
`DATA/<file_name>` (the dataset's own layout), in the annotation's order:
people are found by a detector network, a COCO-results detection file
(`--det-file`, looked up by the PoseTrack image id) or the GT boxes
(`--use-gt-boxes`: each video's own annotation file; `--gt-boxes FILE`: one
file for all videos), HRNet estimates their poses, `tracker.PoseTracker`
gives track IDs (a fresh tracker state per video), and one prediction file is
written per video to `OUT/<annotation file name>`, listing every GT image in
GT order (poseval aligns frames by position): PoseTrack18 JSON for 2018 GT,
annolist for 2017 GT.

Resumable: a video whose output exists and lists all its frames is skipped
(files are written to a temporary name and renamed, so an output that exists
is complete). A video with a missing or unreadable frame, or a malformed
annotation file, is reported and skipped; the exit status is then 1.

People the tracker leaves untracked (ID -1, e.g. while a track waits for
`min_hits`) are not written: poseval needs a track ID on every person.
A COCO-trained model has no PoseTrack head_bottom/head_top (COCO's eyes are
other points): those joints are written as missing, which lowers head AP.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)


def video_images(path: Path) -> tuple[str, list[dict]]:
    """("2018" | "2017", image entries with file_name and id) of one annotation file."""
    from core.posetrack_format import PoseTrackFormatError  # noqa: PLC0415

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise PoseTrackFormatError(f"{path}: not valid JSON ({error})") from error
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        for index, image in enumerate(data["images"]):
            if not isinstance(image, dict) or "file_name" not in image or "id" not in image:
                raise PoseTrackFormatError(f"{path}: images[{index}]: needs 'file_name' and 'id'")
        return "2018", data["images"]
    if isinstance(data, dict) and isinstance(data.get("annolist"), list):
        images = []
        for index, entry in enumerate(data["annolist"]):
            try:
                images.append({"file_name": entry["image"][0]["name"], "id": index})
            except (KeyError, IndexError, TypeError) as error:
                raise PoseTrackFormatError(f"{path}: annolist[{index}].image: expected [{{'name': ...}}]") from error
        return "2017", images
    raise PoseTrackFormatError(f"{path}: neither 'images' (PoseTrack 2018) nor 'annolist' (PoseTrack 2017)")


def is_complete(path: Path, num_images: int) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError):
        return False
    listed = data.get("images", data.get("annolist")) if isinstance(data, dict) else None
    return isinstance(listed, list) and len(listed) == num_images


def predict_video(annotation_path: Path, root: Path, box_source, estimator, tracker,
                  joint_threshold: float | None, layout: str, output: Path, progress: bool = True) -> int:
    """Predict, track and write one video; returns the number of frames."""
    import cv2  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from core.types import Frame  # noqa: PLC0415
    from core.posetrack_format import (  # noqa: PLC0415
        posetrack17_prediction_document,
        posetrack18_prediction_document,
        write_json_atomic,
    )

    video_format, images = video_images(annotation_path)
    boxes_for = box_source.for_video(annotation_path, video_format)
    tracker.reset()
    frames = []
    untracked = 0
    for index, image_info in enumerate(tqdm(images, desc=annotation_path.stem, unit="frame", leave=False,
                                            disable=not progress)):
        image_path = root / image_info["file_name"]
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{image_path}: frame {index} of {annotation_path.name} is missing or unreadable")
        frame = Frame(index=index, timestamp_s=float(index), image=image, source=str(annotation_path), path=str(image_path))
        detections = boxes_for(frame, image_info["id"])
        keypoints, scores = estimator(image, detections.boxes)
        keypoints = np.asarray(keypoints, np.float32).reshape(len(detections), -1, 2)
        scores = np.asarray(scores, np.float32).reshape(len(detections), -1)
        with_scores = np.concatenate([keypoints, scores[..., None]], axis=-1)
        track_ids = tracker.update(with_scores, boxes=detections.boxes, scores=detections.scores, frame=image).ids
        keep = track_ids >= 0
        untracked += int((~keep).sum())
        frames.append((image_info, (keypoints[keep], scores[keep], track_ids[keep], detections.boxes[keep])))
    if untracked:
        LOGGER.info("%s: %d untracked people not written", annotation_path.name, untracked)
    build = posetrack18_prediction_document if video_format == "2018" else posetrack17_prediction_document
    write_json_atomic(output, build(frames, keypoint_layout=layout, score_threshold=joint_threshold))
    return len(images)


