"""`main.py track INPUT`: track poses in a video, a folder of videos or frames, a camera or a stream.

A camera index (`track 0`) or a stream URL (`track rtsp://host/path`) is
recorded until Ctrl-C (which finishes the outputs), `--max-frames` or the end
of the stream, into `OUT/<source>_<UTC start time>.*`.

Writes per input `OUT/<relative path without extension>` + `.json` (per-frame
poses with track IDs, docs/output_format.md), and on request `.posetrack.json`,
`.coco.json`, `.csv`, `.mp4` (annotated). Reruns skip inputs whose outputs are
complete. Exit status (`pipeline.batch.EXIT_STATUSES`): 0 all done, 1 some
input failed, 2 bad arguments or models, 3 some input truncated (decoded fewer
frames than its container announced; retried by a rerun unless
--accept-truncated), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
from pathlib import Path

from cli.options import (
    add_detector_arguments,
    add_engine_arguments,
    add_keypoint_threshold_argument,
    add_pose_arguments,
    add_profile_argument,
    add_tracker_arguments,
    check_model_files,
    engine_from_args,
    positive_int,
    tracker_options,
)
from pipeline.batch import (
    TrackOptions,
    check_outputs_spare_inputs,
    discover_inputs,
    parse_formats,
    prepare_output_folder,
    run_tracking,
)
from pipeline.engines import EngineSetupError
from pipeline.models import build_track_models
from pipeline.profile import profile_lines

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="a video file, a folder of videos (searched recursively), "
                        "a folder of frames, a camera index (0) or a stream URL (rtsp://..., http://...): a "
                        "camera or stream is recorded until Ctrl-C or --max-frames")
    parser.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    parser.add_argument("--formats", default="json", metavar="LIST",
                        help="comma-separated outputs: json, posetrack, coco, csv, video (default: json)")
    parser.add_argument("--input-type", choices=("auto", "videos", "frames"), default="auto",
                        help="what to look for in a folder INPUT (default auto: videos, and image folders "
                        "without videos)")
    parser.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                        help="stop each input after N frames (for trials; for a camera or stream, the recording length)")
    parser.add_argument("--open-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long a camera or stream may take to deliver its first frame (default 10)")
    parser.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs are already complete")
    parser.add_argument("--accept-truncated", action="store_true",
                        help="count a video that decodes fewer frames than it announces as done (exit 0) and "
                        "skip it on reruns; without it, it is reported TRUNCATED (exit 3) and retried")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    run = parser.add_argument_group("pipeline")
    run.add_argument("--batch-frames", type=positive_int, default=None, metavar="N",
                     help="frames whose person crops go through the pose network together when queued (default: "
                     "up to 4, while their crops fit one network call of --batch-size)")
    run.add_argument("--queue-size", type=positive_int, default=4, metavar="N",
                     help="frames buffered between two stages (default 4)")
    run.add_argument("--detect-every", type=positive_int, default=None, metavar="N",
                     help="run the detector on every N-th frame; in between, boxes follow the tracked poses, and "
                     "a new person is found within N frames (default: every frame for files, every 5th for "
                     "cameras and streams)")
    add_keypoint_threshold_argument(run, "in the video")

    add_profile_argument(run)
    add_pose_arguments(parser, flip_test=False, live=True)
    add_detector_arguments(parser)

    track = add_tracker_arguments(parser)
    track.add_argument("--no-tracking", action="store_true", help="no track IDs (written as -1)")
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        formats = parse_formats(args.formats)
        inputs = discover_inputs(args.input, args.input_type, exclude=[args.out])
        check_outputs_spare_inputs(inputs, args.out, formats)
        tracking = None if args.no_tracking else tracker_options(args)
        check_model_files(args)
        engine = engine_from_args(args)
        made_out = not Path(args.out).exists()
        prepare_output_folder(args.out)
    except (ValueError, OSError) as error:
        logger.error("%s", error)
        return 2
    logger.info("%d input(s) in %s; outputs %s in %s", len(inputs), args.input, ", ".join(formats), args.out)
    options = TrackOptions(
        max_frames=args.max_frames, open_timeout_s=args.open_timeout, keypoint_threshold=args.keypoint_threshold,
        progress=not args.no_progress, accept_truncated=args.accept_truncated,
        pipeline_options={"pose_batch_frames": args.batch_frames, "queue_size": args.queue_size,
                          "detect_every": args.detect_every},
        profile=args.profile,
    )
    try:
        summary, report = run_tracking(inputs, args.out, formats, functools.partial(build_track_models, args, tracking),
                                       options, overwrite=args.overwrite, engine=engine)
    except (EngineSetupError, ValueError) as error:  # ValueError: a camera given to the Ray engine
        logger.error("%s", error)
        if made_out:  # nothing ran: leave no empty output folder behind
            with contextlib.suppress(OSError):
                Path(args.out).rmdir()
        return 2
    for line in summary.lines():
        print(line)
    if report.engine != "local":
        for line in report.lines():
            print(line)

    for result in summary.results:
        if result.profile is not None:
            for line in profile_lines(result.profile, f"profile {result.name}"):
                print(line)
    return summary.exit_status
