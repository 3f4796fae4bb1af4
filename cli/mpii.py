"""`main.py mpii eval`: PCKh@0.5 per joint, Mean and Mean@0.1, as the official HRNet code.

Heavy imports (scipy) happen inside `run`, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging

from core.io import write_json_atomic
from evaluation import mpii

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="mpii_action", metavar="ACTION", required=True)
    evaluate = actions.add_parser(
        "eval", help="PCKh of predictions against the official gt_valid.mat",
        description="PCKh@0.5 per joint, Mean (without pelvis and thorax) and Mean@0.1, with the official head-size "
                    "rule (0.6 x head-box diagonal). By default Mean@0.1 is computed as the official code does, at "
                    "threshold 0.11 (index 11 of its 0..0.5 grid); --literal-mean-at-0.1 uses 0.10.",
    )
    evaluate.add_argument("--gt", required=True, help="annot/gt_valid.mat (or the same fields as JSON)")
    evaluate.add_argument("--pred", required=True, help="pred.mat (official `preds`, 1-based) or .npy/.json (N, 16, 2|3)")
    evaluate.add_argument("--pred-base", type=int, choices=(0, 1), default=None,
                          help="coordinate base of the predictions (default: 1 for .mat, 0 for .npy/.json)")
    evaluate.add_argument("--literal-mean-at-0.1", dest="literal_low", action="store_true",
                          help="compute Mean@0.1 at threshold 0.10 instead of the official code's 0.11")
    evaluate.add_argument("--name", default="pose_hrnet", help="name in the table's Arch column")
    evaluate.add_argument("--json", metavar="OUT.json", help="write the table values and per-joint PCKh here")


def run(args: argparse.Namespace) -> int:
    try:
        ground_truth = mpii.load_ground_truth(args.gt)
        one_based = None if args.pred_base is None else args.pred_base == 1
        predictions = mpii.load_predictions(args.pred, one_based=one_based)
        result = mpii.evaluate_pckh(ground_truth, predictions, low_threshold_index=10 if args.literal_low else 11)
    except (FileNotFoundError, ValueError) as error:
        logger.error("%s", error)
        return 2
    print(f"Mean@0.1 computed at threshold {result.low_threshold:.2f}"
          + (" (official code behaviour; the paper labels it Mean@0.1)" if not args.literal_low else ""))
    print(result.format_table(args.name))
    if args.json:
        try:
            write_json_atomic(args.json, {"summary": result.summary, "low_threshold": result.low_threshold,
                                          "pckh": dict(zip(result.keypoint_names, result.pckh.tolist())),
                                          "visible": dict(zip(result.keypoint_names, result.counts.tolist()))},
                              indent=1)
        except OSError as error:
            logger.error("cannot write the results to %s: %s", args.json, error.strerror or error)
            return 2
    return 0
