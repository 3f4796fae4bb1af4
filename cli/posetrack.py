"""`main.py posetrack eval|run`: PoseTrack evaluation (poseval- and PoseTrack21-kit-exact) and prediction runs.

eval: score prediction files against PoseTrack 2017/2018 GT and print
poseval's tables, or (`--benchmark posetrack21`, detected from the GT's
person_id) against PoseTrack21 GT with its kit's keypoint HOTA and mAP
(docs/POSETRACK21.md). Default mode reproduces the official numbers, quirks
included; `--clean` fixes the quirks and says so.

run: for every video of a PoseTrack dataset split, detect people (or read
boxes from a file, or use GT boxes), estimate poses with HRNet, track them, and
write one poseval-ready prediction JSON per video (see `posetrack_run.py`).

torch loads only when a run builds its models, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path

from cli.options import (
    add_detector_arguments,
    add_engine_arguments,
    add_keypoint_threshold_argument,
    add_pose_arguments,
    add_profile_argument,
    engine_from_args,
    tracker_options,
)
from core.io import write_json_atomic
from evaluation.posetrack_run import build_posetrack_models, plan_videos, predict_task
from pipeline.batch import BatchSummary, prepare_output_folder
from pipeline.engines import BatchWork, EngineSetupError, LocalEngine
from pipeline.profile import merge_profiles, profile_lines

logger = logging.getLogger(__name__)

CLEAN_MODE_NOTE = (
    "clean mode: quirks of poseval fixed (frames aligned by image id and selected by is_labeled, last frame kept, "
    "real misses/false positives for frames without predictions/GT people, MOTP from matches only, stable AP sort); "
    "numbers are NOT comparable to published poseval results"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="posetrack_action", metavar="ACTION", required=True)

    evaluate = actions.add_parser(
        "eval", help="score predictions against GT, as poseval (2017/2018) or the PoseTrack21 kit does",
        description="Per-joint AP and MOTA/MOTP/precision/recall, equal to poseval's, or (PoseTrack21) keypoint HOTA "
                    "and mAP equal to its kit's (default), or with their quirks fixed (--clean).",
    )
    evaluate.add_argument("--gt", required=True, help="folder of per-video GT JSON files (or one GT JSON file); a file holding several videos is read "
                          "whole in both modes (poseval silently reads only its first video)")
    evaluate.add_argument("--pred", required=True, help="folder of prediction JSON files with the GT file names (or one file)")
    evaluate.add_argument("--json", metavar="OUT.json", help="write the metrics (percent, full precision) to this file")
    evaluate.add_argument("--clean", action="store_true", help="fix poseval's (or the PoseTrack21 kit's) quirks; numbers then differ from the official ones")
    evaluate.add_argument("--no-tracking", action="store_true", help="AP only (skip the MOT metrics, or HOTA)")
    evaluate.add_argument("--benchmark", choices=("auto", "posetrack18", "posetrack21"), default="auto",
                          help="posetrack18: PoseTrack 2017/2018, poseval's AP and MOTA; posetrack21: the PoseTrack21 "
                               "kit's keypoint HOTA and mAP; auto (default): posetrack21 when the GT annotations carry "
                               "PoseTrack21's person_id, else posetrack18")

    run = actions.add_parser(
        "run", help="predict and track every video of a PoseTrack split, one JSON per video",
        description="Detection (or a detection file / GT boxes), HRNet and the tracker on every video of a PoseTrack "
                    "2017/2018 or PoseTrack21 split; writes poseval-ready PoseTrack18 prediction files (PoseTrack21: "
                    "with person_id, as its kit reads them). Resumable per video.",
    )
    add_run_arguments(run)


def run(args: argparse.Namespace) -> int:
    if args.posetrack_action == "run":
        return _run_videos(args)
    return _run_eval(args)


def _run_eval(args: argparse.Namespace) -> int:
    benchmark = args.benchmark if args.benchmark != "auto" else detect_benchmark(Path(args.gt))
    try:
        if benchmark == "posetrack21":
            from evaluation.posetrack21 import CLEAN_CHANGES as clean_note  # noqa: PLC0415 - scipy.optimize, only to score
            from evaluation.posetrack21 import evaluate_paths as evaluate_posetrack21  # noqa: PLC0415 - as above

            metrics = evaluate_posetrack21(args.gt, args.pred, clean=args.clean, tracking=not args.no_tracking)
            counts = f"# sequences: {metrics.num_sequences}, labeled frames: {metrics.num_frames}"
        else:
            from evaluation.posetrack import evaluate_paths  # noqa: PLC0415 - scipy.optimize (about 1 s), only to score

            clean_note = CLEAN_MODE_NOTE
            metrics = evaluate_paths(args.gt, args.pred, clean=args.clean, evaluate_tracking=not args.no_tracking)
            counts = (f"# videos: {metrics.num_videos}, evaluated frames: {metrics.num_frames}, "
                      f"MOT frames: {metrics.num_mot_frames}")
    except (FileNotFoundError, ValueError) as error:  # the format errors of both readers are ValueErrors
        logger.error("%s", error)
        return 2
    if args.clean:
        print(clean_note)
    print(counts)
    print(metrics.format_tables())
    return _write_metrics(args.json, metrics.to_dict())


def detect_benchmark(gt: Path) -> str:
    """posetrack21 when the first GT file's annotations carry PoseTrack21's person_id, else posetrack18."""
    from evaluation.posetrack21_files import is_posetrack21_ground_truth  # noqa: PLC0415 - numpy, only to score

    files = sorted(gt.glob("*.json")) if gt.is_dir() else [gt]
    if files and is_posetrack21_ground_truth(files[0]):
        logger.info("%s: PoseTrack21 ground truth (person_id): keypoint HOTA and mAP as the PoseTrack21 kit "
                    "(--benchmark posetrack18 for poseval's AP and MOTA)", files[0])
        return "posetrack21"
    logger.info("scoring as PoseTrack 2017/2018 with poseval's AP and MOTA (--benchmark posetrack21 for the "
                "PoseTrack21 kit's keypoint HOTA)")
    return "posetrack18"


def _write_metrics(path: str | None, document: dict) -> int:
    if not path:
        return 0
    try:
        write_json_atomic(path, document, indent=1)
    except OSError as error:
        logger.error("cannot write the metrics to %s: %s", path, error.strerror or error)
        return 2
    logger.info("metrics written to %s", path)
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="ROOT",
                        help="PoseTrack root: annotations/<split>/*.json (PoseTrack21: posetrack_data/<split>/*.json) "
                             "and the frame folders their file names point to")
    parser.add_argument("--split", default="val", help="annotation sub-folder (default val)")
    parser.add_argument("--benchmark", choices=("auto", "posetrack18", "posetrack21"), default="auto",
                        help="posetrack21: PoseTrack21's layout (ROOT/posetrack_data/SPLIT), files for its kit "
                             "(person_id = track_id); posetrack18: PoseTrack 2017/2018 (ROOT/annotations/SPLIT); "
                             "auto (default): posetrack21 when only ROOT/posetrack_data/SPLIT exists")
    parser.add_argument("--annotations", default=None, metavar="DIR",
                        help="folder of per-video annotation files (default ROOT/annotations/SPLIT, or "
                             "ROOT/posetrack_data/SPLIT for PoseTrack21)")
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
    add_engine_arguments(parser)


def run_layout(root: Path, split: str, benchmark: str, annotations: str | None) -> tuple[str, Path]:
    """(benchmark, annotation folder) of `posetrack run`: PoseTrack21 keeps its files in posetrack_data/SPLIT."""
    posetrack21_folder, posetrack18_folder = root / "posetrack_data" / split, root / "annotations" / split
    if benchmark == "auto":
        benchmark = "posetrack21" if posetrack21_folder.is_dir() and not posetrack18_folder.is_dir() else "posetrack18"
    if annotations:
        return benchmark, Path(annotations)
    return benchmark, posetrack21_folder if benchmark == "posetrack21" else posetrack18_folder


def _run_videos(args: argparse.Namespace) -> int:
    root = Path(args.data)
    benchmark, annotations = run_layout(root, args.split, args.benchmark, args.annotations)
    files = sorted(annotations.glob("*.json"))
    if not files:
        hint = (" (PoseTrack21 keeps them in ROOT/posetrack_data/SPLIT: pass --benchmark posetrack21)"
                if benchmark == "posetrack18" and (root / "posetrack_data").is_dir() else "")
        logger.error("no *.json annotation files in %s%s", annotations, hint)
        return 2
    logger.info("%s: %d sequences from %s", benchmark, len(files), annotations)
    if args.max_videos:
        files = files[: args.max_videos]
    try:
        engine = engine_from_args(args)
        build_models = functools.partial(build_posetrack_models, args, tracker_options(args))
        # The local engine builds them once here; a model PoseTrack cannot take fails before any video.
        models = build_models() if not engine.remote else None
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
    if models is not None:
        engine = LocalEngine(models)
    tasks, skipped = plan_videos(files, out, overwrite=args.overwrite, sizes=engine.remote)
    work = BatchWork(build_models, functools.partial(
        predict_task, root=root, keypoint_threshold=args.keypoint_threshold,
        progress=not args.no_progress and not engine.remote, profile=args.profile, benchmark=benchmark))
    try:
        report = engine.run(tasks, work, out, already_done=len(skipped), progress=not args.no_progress)
    except EngineSetupError as error:
        logger.error("%s", error)
        return 2
    summary = BatchSummary(list(report.results), skipped)
    logger.info("%d videos: %d written, %d already complete, %d failed; predictions in %s",
                len(files), len(summary.done), len(skipped), len(summary.failed), out)
    if report.engine != "local":
        print("\n".join(report.lines()))
    profiles = [result.profile for result in summary.results if result.profile is not None]
    if profiles:
        print("\n".join(profile_lines(merge_profiles(profiles), "profile (all videos)")))
    return summary.exit_status
