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
import json
import logging

LOGGER = logging.getLogger(__name__)

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
    from pose.evaluation import posetrack_run

    posetrack_run.add_run_arguments(run)


def run(args: argparse.Namespace) -> int:
    if args.posetrack_action == "run":
        from pose.evaluation import posetrack_run

        return posetrack_run.run(args)
    return _run_eval(args)


def _run_eval(args: argparse.Namespace) -> int:
    from pose.evaluation.posetrack import evaluate_paths
    from pose.evaluation.posetrack_io import PoseTrackFormatError

    try:
        metrics = evaluate_paths(args.gt, args.pred, clean=args.clean, evaluate_tracking=not args.no_tracking)
    except (FileNotFoundError, PoseTrackFormatError, ValueError) as error:
        LOGGER.error("%s", error)
        return 2
    if args.clean:
        print(CLEAN_MODE_NOTE)
    print(f"# videos: {metrics.num_videos}, evaluated frames: {metrics.num_frames}, MOT frames: {metrics.num_mot_frames}")
    print(metrics.format_tables())
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as out:
                json.dump(metrics.to_dict(), out, indent=1)
        except OSError as error:
            LOGGER.error("cannot write the metrics to %s: %s", args.json, error.strerror or error)
            return 2
        LOGGER.info("metrics written to %s", args.json)
    return 0
