"""`main.py coco eval`: COCO keypoint AP with the official HRNet test protocol.

    # run HRNet on detector boxes (the published numbers) and score the results
    main.py coco eval --ann person_keypoints_val2017.json --images val2017/ \\
        --det-file COCO_val2017_detections_AP_H_56_person.json \\
        --pose-config coco/w32_256x192 --pose-weights W.pth --out results.json
    # ground-truth boxes instead (the YAMLs' TEST.USE_GT_BBOX true)
    main.py coco eval --ann ... --images ... --gt-boxes --pose-config ... --pose-weights ...
    # score an existing results file
    main.py coco eval --results results.json --ann person_keypoints_val2017.json

Prints pycocotools' summary and the official table row. The thresholds come
from the pose config's TEST section unless given here: --box-score-threshold
(IMAGE_THRE), --keypoint-score-threshold (IN_VIS_THRE), --oks-nms-threshold
(OKS_THRE), --soft-nms (SOFT_NMS).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path

import pose
from cli.options import add_pose_arguments, add_profile_argument
from detector import FileDetector, GroundTruthDetector
from evaluation.coco import (
    CocoTestSettings,
    format_official_table,
    load_annotation,
    load_results,
    predict_coco,
    score_results,
    write_results,
)
from pipeline.models import build_estimator
from pipeline.profile import PipelineProfile

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="coco_command", metavar="ACTION", required=True)
    evaluate = commands.add_parser(
        "eval",
        help="predict keypoints (official test protocol) and/or score them with pycocotools",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("--ann", required=True, metavar="JSON", help="COCO person keypoint annotation file")
    evaluate.add_argument("--images", metavar="DIR", help="folder the annotation's image file names are relative to")
    boxes = evaluate.add_mutually_exclusive_group()
    boxes.add_argument("--det-file", metavar="JSON", help="person detections (COCO results list), as the official test uses")
    boxes.add_argument("--gt-boxes", action="store_true", help="use the cleaned ground-truth boxes (TEST.USE_GT_BBOX)")
    boxes.add_argument("--results", metavar="JSON", help="score this existing keypoint results file; no model is run")
    evaluate.add_argument("--out", metavar="JSON", help="write the keypoint results here")
    evaluate.add_argument("--box-score-threshold", type=float, default=None, metavar="SCORE",
                          help="drop detections scoring below this (default: the config's TEST.IMAGE_THRE)")
    evaluate.add_argument("--keypoint-score-threshold", type=float, default=None, metavar="SCORE",
                          help="rescoring averages the keypoint scores above this (default: TEST.IN_VIS_THRE)")
    evaluate.add_argument("--oks-nms-threshold", type=float, default=None, metavar="OKS",
                          help="OKS-NMS drops a pose overlapping a better one by more than this (default: TEST.OKS_THRE)")
    evaluate.add_argument("--soft-nms", action=argparse.BooleanOptionalAction, default=None, help="soft OKS-NMS (TEST.SOFT_NMS)")
    evaluate.add_argument("--arch", default=None, help="name of the table row (default: the pose config's name)")
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_pose_arguments(evaluate)
    add_profile_argument(evaluate)


def _settings(args: argparse.Namespace, experiment):
    base = CocoTestSettings.from_config(experiment)
    given = {name: getattr(args, name) for name in ("box_score_threshold", "keypoint_score_threshold",
                                                     "oks_nms_threshold", "soft_nms")}
    return dataclasses.replace(base, **{name: value for name, value in given.items() if value is not None})


def _predict(args: argparse.Namespace, annotation: dict) -> list[dict]:
    if args.images is None:
        raise ValueError("--images DIR is needed to run the model (or pass --results to score a file)")
    if args.det_file is None and not args.gt_boxes:
        raise ValueError("choose the person boxes: --det-file DETECTIONS.json or --gt-boxes")
    settings = _settings(args, pose.load_config(args.pose_config))
    if args.gt_boxes:
        boxes = GroundTruthDetector(args.ann, official_cleaning=True)
    else:
        boxes = FileDetector(args.det_file, score_threshold=settings.box_score_threshold, sort_by_score=False)
    logger.info("test settings: %s", settings)
    estimator = build_estimator(args)
    logger.info("pose estimator: %s", estimator)
    profile = PipelineProfile() if args.profile else None
    results = predict_coco(estimator, annotation, args.images, boxes, settings, progress=not args.no_progress,
                           profile=profile)
    if profile is not None:
        print("\n".join(profile.lines("profile")))
    return results


def _check_writable(path: str) -> None:
    """OSError naming `path` when the results file cannot be written there (parent folders are created)."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"--out {target} is a folder; give a file name such as results.json")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"--out {target}: cannot create its folder ({error.strerror or error})") from error
    if not os.access(target.parent, os.W_OK):
        raise PermissionError(f"--out {target}: its folder is not writable")


def run(args: argparse.Namespace) -> int:
    try:
        annotation = load_annotation(args.ann)
        if args.results is not None:
            results = load_results(args.results, annotation)
        else:
            if args.out is not None:
                _check_writable(args.out)  # before the long run, not after it
            results = _predict(args, annotation)
            if args.out is not None:
                write_results(results, args.out)
        scores = score_results(results, annotation)
    except (ValueError, OSError) as error:
        logger.error("%s", error)
        return 2
    arch = args.arch or Path(str(args.results if args.results is not None else args.pose_config)).stem
    print(scores.summary, end="")
    print(format_official_table(scores.stats, arch))
    return 0
