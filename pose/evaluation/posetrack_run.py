"""`main.py posetrack run`: predict and track every video of a PoseTrack split.

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

import argparse
import json
import logging
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from detector.cli_options import add_detector_arguments  # noqa: PLC0415 - argparse-only modules
    from pose.cli_options import add_pose_arguments  # noqa: PLC0415

    parser.add_argument("--data", required=True, metavar="ROOT",
                        help="PoseTrack root: annotations/<split>/*.json and the frame folders their file names point to")
    parser.add_argument("--split", default="val", help="annotation sub-folder (default val)")
    parser.add_argument("--annotations", default=None, metavar="DIR",
                        help="folder of per-video annotation files (default ROOT/annotations/SPLIT)")
    parser.add_argument("--out", required=True, metavar="PRED_DIR", help="output folder, one JSON per video")
    parser.add_argument("--use-gt-boxes", action="store_true",
                        help="person boxes from each video's own GT annotations instead of a detector")
    parser.add_argument("--joint-threshold", type=float, default=None, metavar="SCORE",
                        help="write joints scoring below this as missing (poseval's MOT counts every written joint; "
                             "AP prefers all of them; default: write all)")
    parser.add_argument("--max-videos", type=int, default=None, metavar="N", help="only the first N videos (for trials)")
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose output is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    tracking = parser.add_argument_group("tracker")
    tracking.add_argument("--track-flow", action="store_true", help="optical-flow propagation of poses")
    tracking.add_argument("--tracker-option", action="append", default=[], metavar="KEY=VALUE",
                          help="any tracker.TrackerOptions field, e.g. --tracker-option min_hits=1")
    add_pose_arguments(parser)
    add_detector_arguments(parser)


def _video_images(path: Path) -> tuple[str, list[dict]]:
    """("2018" | "2017", image entries with file_name and id) of one annotation file."""
    from pose.evaluation.posetrack_io import PoseTrackFormatError  # noqa: PLC0415

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


def _is_complete(path: Path, num_images: int) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError):
        return False
    listed = data.get("images", data.get("annolist")) if isinstance(data, dict) else None
    return isinstance(listed, list) and len(listed) == num_images


class _BoxSource:
    """Person boxes for a frame: from a network (by image) or from a file / the GT (by PoseTrack image id)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.per_video_gt = args.use_gt_boxes
        self.by_id = None
        self.network = None
        if self.per_video_gt:
            if args.det_file or args.gt_boxes or args.detector:
                raise ValueError("--use-gt-boxes cannot be combined with --det-file, --gt-boxes or --detector")
        elif args.det_file or args.gt_boxes:
            from detector.file_detector import FileDetector  # noqa: PLC0415
            from detector.ground_truth import GroundTruthDetector  # noqa: PLC0415

            if args.gt_boxes:
                self.by_id = GroundTruthDetector(args.gt_boxes)
            else:
                self.by_id = FileDetector(args.det_file, score_threshold=args.det_threshold,
                                          min_box_size_px=args.det_min_size)
        else:
            from detector.cli_options import build_detector  # noqa: PLC0415

            self.network = build_detector(args)

    def for_video(self, annotation_path: Path, video_format: str):
        """A callable (frame, image id) -> Detections for one video."""
        if self.per_video_gt:
            if video_format != "2018":
                raise ValueError(f"{annotation_path}: --use-gt-boxes needs PoseTrack 2018 annotations (with bbox)")
            from detector.ground_truth import GroundTruthDetector  # noqa: PLC0415

            source = GroundTruthDetector(annotation_path)
            return lambda frame, image_id: source.detections_for_image_id(image_id)
        if self.by_id is not None:
            return lambda frame, image_id: self.by_id.detections_for_image_id(image_id)
        return lambda frame, image_id: self.network([frame])[0]


def predict_video(annotation_path: Path, root: Path, box_source: _BoxSource, estimator, tracker,
                  joint_threshold: float | None, layout: str, output: Path, progress: bool = True) -> int:
    """Predict, track and write one video; returns the number of frames."""
    import cv2  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from pipeline.types import Frame  # noqa: PLC0415
    from pose.evaluation.posetrack_io import (  # noqa: PLC0415
        posetrack17_prediction_document,
        posetrack18_prediction_document,
        write_json_atomic,
    )

    video_format, images = _video_images(annotation_path)
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
        track_ids = np.asarray(tracker.update(with_scores, boxes=detections.boxes, scores=detections.scores,
                                              frame=image), np.int64).reshape(-1)
        keep = track_ids >= 0
        untracked += int((~keep).sum())
        frames.append((image_info, (keypoints[keep], scores[keep], track_ids[keep], detections.boxes[keep])))
    if untracked:
        LOGGER.info("%s: %d untracked people not written", annotation_path.name, untracked)
    build = posetrack18_prediction_document if video_format == "2018" else posetrack17_prediction_document
    write_json_atomic(output, build(frames, keypoint_layout=layout, score_threshold=joint_threshold))
    return len(images)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from pipeline.batch import prepare_output_folder  # noqa: PLC0415
    from pipeline.cli_track import tracker_options  # noqa: PLC0415 - light module, shared flag parsing
    from pose.cli_options import build_estimator  # noqa: PLC0415
    from pose.evaluation.posetrack_io import PoseTrackFormatError, keypoint_layout_of  # noqa: PLC0415
    from tracker import PoseTracker  # noqa: PLC0415

    root = Path(args.data)
    annotations = Path(args.annotations) if args.annotations else root / "annotations" / args.split
    files = sorted(annotations.glob("*.json"))
    if not files:
        LOGGER.error("no *.json annotation files in %s", annotations)
        return 2
    if args.max_videos:
        files = files[: args.max_videos]
    try:
        estimator = build_estimator(args)
        layout = keypoint_layout_of(estimator.joint_names)
        box_source = _BoxSource(args)
        tracker = PoseTracker(**tracker_options(args))
    except (FileNotFoundError, ValueError) as error:
        LOGGER.error("%s", error)
        return 2
    out = Path(args.out)
    if out.resolve() == annotations.resolve():
        LOGGER.error("--out %s is the annotation folder: the predictions would overwrite the GT files", out)
        return 2
    try:
        prepare_output_folder(out)
    except OSError as error:
        LOGGER.error("%s", error)
        return 2
    failed = skipped = 0
    for path in tqdm(files, desc="videos", unit="video", disable=args.no_progress):
        output = out / path.name
        try:
            if not args.overwrite and output.exists() and _is_complete(output, len(_video_images(path)[1])):
                skipped += 1
                continue
            predict_video(path, root, box_source, estimator, tracker, args.joint_threshold, layout, output,
                          progress=not args.no_progress)
        except (OSError, ValueError, PoseTrackFormatError) as error:
            failed += 1
            LOGGER.error("video skipped: %s", error)
    LOGGER.info("%d videos: %d written, %d already complete, %d failed; predictions in %s",
                len(files), len(files) - skipped - failed, skipped, failed, out)
    return 1 if failed else 0
