"""Predict and track every video of a PoseTrack split (`main.py posetrack run`, see `cli.posetrack`).

For each per-video annotation file of `DATA/annotations/SPLIT/` (PoseTrack
2018 COCO-style, or 2017 annolist; PoseTrack21: `DATA/posetrack_data/SPLIT/`,
written with `person_id` = `track_id` as its kit reads it), the frames listed in it are read from
`DATA/<file_name>` (the dataset's own layout), in the annotation's order:
people are found by a detector network, a COCO-results detection file
(`--det-file`, looked up by the PoseTrack image id) or the GT boxes
(`--use-gt-boxes`: each video's own annotation file; `--gt-boxes FILE`: one
file for all videos), HRNet estimates their poses, `tracker.PoseTracker`
gives track IDs (a fresh tracker state per video), and one prediction file is
written per video to `OUT/<annotation file name>`, listing every GT image in
GT order (poseval aligns frames by position): PoseTrack18 JSON for 2018 GT,
annolist for 2017 GT.

Each video runs through `pipeline.Pipeline` (`evaluation.prediction`: the
listed frames as the source, the boxes as a `detector.Detector`, a
`pipeline.sinks.PoseTrackSink` writing the file), the loop `track` uses.

Each video is one `pipeline.engines.Task` (`plan_videos`, `predict_task`), so
that `--engine ray` runs them on Ray workers as `track` does; the models of a
worker come from `build_posetrack_models`.

Resumable: a video whose output exists is skipped (`pipeline.batch.is_complete`,
the check `track` uses: outputs are written to a temporary name and renamed
when whole). A video with a missing or unreadable frame, or a malformed
annotation file, is reported and skipped; the exit status is then 1.

People the tracker leaves untracked (ID -1, e.g. while a track waits for
`min_hits`) are not written: poseval needs a track ID on every person.
A COCO-trained model has no PoseTrack head_bottom/head_top (COCO's eyes are
other points): those joints are written as missing, which lowers head AP.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Sequence

from core.posetrack_format import PoseTrackFormatError, keypoint_layout_of
from detector import FileDetector, GroundTruthDetector
from evaluation.prediction import ListedImageBoxes, predict_listed_images
from pipeline.batch import is_complete
from pipeline.engines import Task
from pipeline.models import build_detector, build_estimator
from pipeline.profile import PipelineProfile
from pipeline.sinks import PoseTrackSink
from pipeline.work import Models, VideoResult, remove_partial_files
from tracker import PoseTracker

logger = logging.getLogger(__name__)


def video_images(path: Path) -> tuple[str, list[dict]]:
    """("2018" | "2017", image entries with file_name and id) of one annotation file."""
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


def video_detector(boxes, annotation_path: Path, video_format: str, images: list[dict]):
    """The `detector.Detector` for one video's frames (frame i = `images[i]`).

    `boxes`: None for the video's own GT boxes (`--use-gt-boxes`, 2018
    annotations only); a box table looked up by PoseTrack image id (a
    `FileDetector` or a `GroundTruthDetector` of one file for all videos); or
    a detector network, which gets the frames themselves.
    """
    if boxes is None:
        if video_format != "2018":
            raise ValueError(f"{annotation_path}: --use-gt-boxes needs PoseTrack 2018 annotations (with bbox)")
        boxes = GroundTruthDetector(annotation_path)
    if hasattr(boxes, "detections_for_image_id"):
        return ListedImageBoxes(boxes, [image["id"] for image in images])
    return boxes


def predict_video(annotation_path: Path, root: Path, boxes, estimator, tracker,
                  keypoint_threshold: float | None, output: Path, progress: bool = True, profile=None,
                  benchmark: str = "posetrack18") -> int:
    """Predict, track and write one video through the pipeline; returns the number of frames.

    `profile`: a `pipeline.profile.PipelineProfile` that adds this video's stage times (`--profile`).
    `benchmark`: "posetrack21" writes `person_id` = `track_id` too (needs a PoseTrack21 / 2018 file).

    `boxes`: see `video_detector`. People the tracker leaves untracked, or
    recovers by optical flow, are not written (detected and tracked people
    only, as before the pipeline ran this loop).
    """
    video_format, images = video_images(annotation_path)
    detector = video_detector(boxes, annotation_path, video_format, images)
    tracker.reset()
    if benchmark == "posetrack21":
        if video_format != "2018":
            raise ValueError(f"{annotation_path}: PoseTrack21 sequences are COCO-style files with 'images'")
        video_format = "posetrack21"
    sink = PoseTrackSink(output, keypoint_names=estimator.keypoint_names, image_infos=images, version=video_format,
                         score_threshold=keypoint_threshold, include_recovered=False)
    paths = [root / image["file_name"] for image in images]
    return predict_listed_images(paths, str(annotation_path), detector, estimator, tracker, sinks=[sink],
                                 progress=progress, profile=profile)


def build_boxes(settings):
    """Where the person boxes come from: None (each video's own GT), a box table or a detector network.

    `settings`: the `cli.options` detector flags and `use_gt_boxes`.
    """
    if settings.use_gt_boxes:
        if settings.det_file or settings.gt_boxes or settings.detector:
            raise ValueError("--use-gt-boxes cannot be combined with --det-file, --gt-boxes or --detector")
        return None

    if settings.gt_boxes:
        return GroundTruthDetector(settings.gt_boxes)
    if settings.det_file:
        return FileDetector(settings.det_file, score_threshold=settings.det_threshold,
                            min_box_size_px=settings.det_min_size)

    return build_detector(settings)


def build_posetrack_models(settings, tracker_options: dict) -> Models:
    """The models of `posetrack run` (`Models.detector` holds the boxes of `build_boxes`).

    Module-level and fed plain data, so that a `functools.partial` of it pickles
    (each Ray worker calls it). A model PoseTrack cannot take fails here, before any video.
    """
    estimator = build_estimator(settings)
    keypoint_layout_of(estimator.keypoint_names)
    return Models(build_boxes(settings), estimator, PoseTracker(**tracker_options))


def video_frame_count(annotation_path: Path) -> int:
    """Frames listed in one annotation file (0 when it cannot be read: its task reports why)."""
    try:
        return len(video_images(annotation_path)[1])
    except (OSError, PoseTrackFormatError):
        return 0


def plan_videos(files: Sequence[Path], out: Path, *, overwrite: bool = False,
                sizes: bool = False) -> tuple[list[Task], list[str]]:
    """(one `Task` per annotation file whose prediction is not complete yet, names of those skipped).

    `sizes`: read each file's frame count (the Ray engine starts the largest first).
    """
    tasks, skipped = [], []
    for path in files:
        if not overwrite and is_complete([out / path.name]):
            skipped.append(path.stem)
            continue
        tasks.append(Task(path.stem, Path(path), (path.name,), frames=video_frame_count(path) if sizes else 0))
    return tasks, skipped


def predict_task(annotation_path: Path, out_dir: Path, models: Models, *, root: Path,
                 keypoint_threshold: float | None, progress: bool = True, profile: bool = False,
                 benchmark: str = "posetrack18") -> VideoResult:
    """`BatchWork.work` of `posetrack run`: one video's prediction file `out_dir/<annotation file name>`.

    A missing or unreadable frame or a malformed annotation file fails the
    video (logged, its `.part` file removed); `profile`: the video's
    `PipelineProfile.as_dict()` in the result.
    """
    output = out_dir / annotation_path.name
    started = time.perf_counter()
    video_profile = PipelineProfile() if profile else None
    try:
        frames = predict_video(annotation_path, root, models.detector, models.estimator, models.tracker,
                               keypoint_threshold, output, progress=progress, profile=video_profile,
                               benchmark=benchmark)
    except (OSError, ValueError, PoseTrackFormatError) as error:
        remove_partial_files([output])
        logger.error("video skipped: %s", error)
        return VideoResult(annotation_path.stem, "failed", seconds=time.perf_counter() - started, reason=str(error))
    return VideoResult(annotation_path.stem, "done", frames, time.perf_counter() - started,
                       profile=video_profile.as_dict() if video_profile is not None else None)
