"""`main.py posetrack eval|run`: PoseTrack evaluation (poseval-exact) and prediction runs.

eval: score prediction files against PoseTrack 2017/2018 GT and print
poseval's tables. Default mode reproduces poseval's numbers, quirks included;
`--clean` fixes the quirks and says so.

run: for every video of a PoseTrack dataset split, detect people (or read
boxes from a file, or use GT boxes), estimate poses with HRNet, track them, and
write one poseval-ready prediction JSON per video (see `posetrack_run.py`).

Heavy modules are imported inside `run`, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

CLEAN_MODE_NOTE = (
    "clean mode: quirks of poseval fixed (frames aligned by image id and selected by is_labeled, last frame kept, "
    "real misses/false positives for frames without predictions/GT people, MOTP from matches only, stable AP sort); "
    "numbers are NOT comparable to published poseval results"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="posetrack_action", metavar="ACTION", required=True)

    evaluate = actions.add_parser(
        "eval", help="score predictions against GT, as poseval does",
        description="Per-joint AP and MOTA/MOTP/precision/recall, equal to poseval's (default) or with its quirks fixed (--clean).",
    )
    evaluate.add_argument("--gt", required=True, help="folder of per-video GT JSON files (or one GT JSON file); a file holding several videos is read "
                          "whole in both modes (poseval silently reads only its first video)")
    evaluate.add_argument("--pred", required=True, help="folder of prediction JSON files with the GT file names (or one file)")
    evaluate.add_argument("--json", metavar="OUT.json", help="write the metrics (percent, full precision) to this file")
    evaluate.add_argument("--clean", action="store_true", help="fix poseval's quirks (numbers then differ from poseval's)")
    evaluate.add_argument("--no-tracking", action="store_true", help="AP only (skip the MOT metrics)")

    run = actions.add_parser(
        "run", help="predict and track every video of a PoseTrack split, one JSON per video",
        description="Detection (or a detection file / GT boxes), HRNet and the tracker on every video of a PoseTrack "
                    "2017/2018 split; writes poseval-ready PoseTrack18 prediction files. Resumable per video.",
    )
    add_run_arguments(run)


def run(args: argparse.Namespace) -> int:
    if args.posetrack_action == "run":
        return _run_videos(args)
    return _run_eval(args)


def _run_eval(args: argparse.Namespace) -> int:
    from evaluation.posetrack import evaluate_paths
    from core.posetrack_format import PoseTrackFormatError

    try:
        metrics = evaluate_paths(args.gt, args.pred, clean=args.clean, evaluate_tracking=not args.no_tracking)
    except (FileNotFoundError, PoseTrackFormatError, ValueError) as error:
        logger.error("%s", error)
        return 2
    if args.clean:
        print(CLEAN_MODE_NOTE)
    print(f"# videos: {metrics.num_videos}, evaluated frames: {metrics.num_frames}, MOT frames: {metrics.num_mot_frames}")
    print(metrics.format_tables())
    if args.json:
        from core.io import write_json_atomic  # noqa: PLC0415

        try:
            write_json_atomic(args.json, metrics.to_dict(), indent=1)
        except OSError as error:
            logger.error("cannot write the metrics to %s: %s", args.json, error.strerror or error)
            return 2
        logger.info("metrics written to %s", args.json)
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from cli.options import add_detector_arguments  # noqa: PLC0415 - argparse-only modules
    from cli.options import add_pose_arguments  # noqa: PLC0415
    from cli.options import add_keypoint_threshold_argument, add_profile_argument  # noqa: PLC0415

    parser.add_argument("--data", required=True, metavar="ROOT",
                        help="PoseTrack root: annotations/<split>/*.json and the frame folders their file names point to")
    parser.add_argument("--split", default="val", help="annotation sub-folder (default val)")
    parser.add_argument("--annotations", default=None, metavar="DIR",
                        help="folder of per-video annotation files (default ROOT/annotations/SPLIT)")
    parser.add_argument("--out", required=True, metavar="PRED_DIR", help="output folder, one JSON per video")
    parser.add_argument("--use-gt-boxes", action="store_true",
                        help="person boxes from each video's own GT annotations instead of a detector")
    add_keypoint_threshold_argument(parser, "in the prediction files (poseval's MOT counts every written keypoint; "
                                    "AP prefers all of them)", effect="are written as missing",
                                    default=None, default_text="none: write all")
    parser.add_argument("--max-videos", type=int, default=None, metavar="N", help="only the first N videos (for trials)")
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose output is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    tracking = parser.add_argument_group("tracker")
    tracking.add_argument("--track-flow", action="store_true", help="optical-flow propagation of poses")
    tracking.add_argument("--tracker-option", action="append", default=[], metavar="KEY=VALUE",
                          help="any tracker.TrackerOptions field, e.g. --tracker-option min_hits=1")
    add_pose_arguments(parser)
    add_detector_arguments(parser)
    add_profile_argument(parser)


def _boxes(args: argparse.Namespace):
    """Where the person boxes come from: None (each video's own GT), a box table or a detector network."""
    if args.use_gt_boxes:
        if args.det_file or args.gt_boxes or args.detector:
            raise ValueError("--use-gt-boxes cannot be combined with --det-file, --gt-boxes or --detector")
        return None
    from detector import FileDetector, GroundTruthDetector  # noqa: PLC0415

    if args.gt_boxes:
        return GroundTruthDetector(args.gt_boxes)
    if args.det_file:
        return FileDetector(args.det_file, score_threshold=args.det_threshold, min_box_size_px=args.det_min_size)
    from pipeline.models import build_detector  # noqa: PLC0415 - torch only for a network

    return build_detector(args)


def _run_videos(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from pipeline.batch import is_complete, prepare_output_folder, remove_partial_files  # noqa: PLC0415
    from cli.options import tracker_options  # noqa: PLC0415 - light module, shared flag parsing
    from pipeline.profile import PipelineProfile  # noqa: PLC0415
    from pipeline.models import build_estimator  # noqa: PLC0415
    from core.posetrack_format import PoseTrackFormatError, keypoint_layout_of  # noqa: PLC0415
    from evaluation.posetrack_run import predict_video  # noqa: PLC0415
    from tracker import PoseTracker  # noqa: PLC0415

    root = Path(args.data)
    annotations = Path(args.annotations) if args.annotations else root / "annotations" / args.split
    files = sorted(annotations.glob("*.json"))
    if not files:
        logger.error("no *.json annotation files in %s", annotations)
        return 2
    if args.max_videos:
        files = files[: args.max_videos]
    try:
        estimator = build_estimator(args)
        keypoint_layout_of(estimator.keypoint_names)  # a model PoseTrack cannot take fails before any video
        boxes = _boxes(args)
        tracker = PoseTracker(**tracker_options(args))
    except (FileNotFoundError, ValueError) as error:
        logger.error("%s", error)
        return 2
    out = Path(args.out)
    if out.resolve() == annotations.resolve():
        logger.error("--out %s is the annotation folder: the predictions would overwrite the GT files", out)
        return 2
    try:
        prepare_output_folder(out)
    except OSError as error:
        logger.error("%s", error)
        return 2
    failed = skipped = 0
    profile = PipelineProfile() if args.profile else None
    for path in tqdm(files, desc="videos", unit="video", disable=args.no_progress):
        output = out / path.name
        try:
            if not args.overwrite and is_complete([output]):
                skipped += 1
                continue
            predict_video(path, root, boxes, estimator, tracker, args.keypoint_threshold, output,
                          progress=not args.no_progress, profile=profile)
        except (OSError, ValueError, PoseTrackFormatError) as error:
            failed += 1
            remove_partial_files([output])
            logger.error("video skipped: %s", error)
    logger.info("%d videos: %d written, %d already complete, %d failed; predictions in %s",
                len(files), len(files) - skipped - failed, skipped, failed, out)
    if profile is not None:
        print("\n".join(profile.lines("profile (all videos)")))
    return 1 if failed else 0
