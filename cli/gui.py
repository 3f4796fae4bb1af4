"""`main.py gui`: open the desktop window on a camera, a file or a URL.

    python main.py gui                                  # the first camera
    python main.py gui --source video.mp4 --pose-weights hrnet_w32_coco_256x192
    python main.py gui --source video.mp4 --screenshot docs/gui.png --exit-after-frames 5

No Qt or torch at import time: they load when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from app.playback import SPEEDS
from app.qt_platform import platform_problem
from app.settings import ViewSettings
from cli.options import (
    add_detector_arguments,
    add_keypoint_threshold_argument,
    add_pose_arguments,
    add_profile_argument,
    add_tracker_arguments,
    positive_int,
    tracker_options,
)
from pipeline.profile import PipelineProfile

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="0",
                        help="camera index, video file, folder of frames or stream URL (default: camera 0)")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="where recordings, snapshots and pose exports go (default: the folder chosen in the "
                             "window last time, else out/gui)")
    add_keypoint_threshold_argument(parser, "in the window (changeable there)")
    parser.add_argument("--show-boxes", action=argparse.BooleanOptionalAction, default=True,
                        help="draw person boxes (default on)")
    parser.add_argument("--show-trails", action=argparse.BooleanOptionalAction, default=True,
                        help="draw recent positions of each track (default on)")
    parser.add_argument("--speed", type=playback_speed, default=1.0, metavar="X",
                        help="play files at their frame rate times X: 0.25, 0.5, 1, 2, 4, or max (as fast as the "
                             "models allow; every frame); default 1, changeable in the window")
    parser.add_argument("--screenshot", metavar="PATH",
                        help="with --exit-after-frames: save a PNG of the whole window before exiting")
    parser.add_argument("--exit-after-frames", type=positive_int, metavar="N",
                        help="quit (status 0) after N frames were shown; for docs and automated checks")
    add_pose_arguments(parser, flip_test=False, live=True)
    add_detector_arguments(parser)
    add_tracker_arguments(parser)
    add_profile_argument(parser)


def playback_speed(text: str) -> float | None:
    """argparse `type=` for --speed: one of the window's speeds (`app.playback.SPEEDS`), or "max" (None)."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value not in SPEEDS:
        choices = ", ".join(f"{speed:g}" for speed in SPEEDS if speed is not None)
        raise argparse.ArgumentTypeError(f"expected one of {choices} or max, got {text!r}")
    return value


def window_torch_threads(cores: int | None = None) -> int:
    """torch's CPU threads under the window: every core but one (the window's own threads need one)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores - 1)


def profiled_pipeline_factory(profile):
    """The window's pipeline factory, with every run's frames added to `profile` (`gui --profile`)."""
    from app.worker import default_pipeline_factory  # noqa: PLC0415 - Qt loads with the command

    def factory(source, detector, estimator, tracker):
        pipeline = default_pipeline_factory(source, detector, estimator, tracker)
        pipeline.profile = profile
        return pipeline

    return factory


def run(args: argparse.Namespace) -> int:
    if args.screenshot and args.exit_after_frames is None:
        logger.error("--screenshot needs --exit-after-frames N (the frame count to render before the picture)")
        return 2

    try:
        chosen_tracker_options = tracker_options(args)
    except ValueError as error:
        logger.error("%s", error)
        return 2
    # torch's threads spin while they wait for each other; with the window's threads (drawing,
    # painting, decoding) on the same cores they stall each other (76-4179 ms per frame seen, against
    # 77-115 ms for `track`). One core is left to the window unless the user chose a count.
    os.environ.setdefault("OMP_NUM_THREADS", str(window_torch_threads()))
    from PyQt6.QtWidgets import QApplication  # noqa: PLC0415 - Qt only when the window opens

    from app.main_window import MainWindow, exec_window  # noqa: PLC0415 - Qt

    if QApplication.instance() is None:
        # Qt aborts the process when its platform plugin cannot load: check first, in a child.
        problem = platform_problem()
        if problem is not None:
            logger.error("%s", problem)
            return 1
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("hrtrack")
    settings = ViewSettings(
        detection_threshold=args.det_threshold,
        keypoint_threshold=args.keypoint_threshold,
        show_boxes=args.show_boxes,
        show_trails=args.show_trails,
        tracker_options=chosen_tracker_options,
    )
    profile = None
    extra = {}
    if getattr(args, "profile", False):
        profile = PipelineProfile()
        extra["pipeline_factory"] = profiled_pipeline_factory(profile)
    window = MainWindow(
        args,
        args.source,
        output_dir=args.output_dir,
        settings=settings,
        exit_after_frames=args.exit_after_frames,
        screenshot=args.screenshot,
        playback_speed=args.speed,
        **extra,
    )
    # A scripted run (screenshots, checks) always has the same size; a person gets last run's window.
    if args.exit_after_frames is not None or not window.restore_geometry():
        window.resize(1280, 720)
    window.show()
    try:
        # Returns once the window is closed and every thread it started has ended.
        return exec_window(window)
    finally:
        if profile is not None:
            print("\n".join(profile.lines("profile (all sources shown)")))
