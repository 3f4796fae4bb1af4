"""hrtrack: real-time multi-person pose tracking with HRNet.

The one command-line entry point. Each subcommand lives in its own module,
which is imported only when that subcommand runs, so `--help` stays fast.
A command module defines `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module, one-line help). Order is the order `--help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "track": ("cli.track", "Track poses in a video, a folder of videos or a folder of frames; write JSON/CSV/video."),
    "gui": ("cli.gui", "Open the desktop window: live skeletons with track IDs on a camera, file or URL."),
    "pose": ("cli.pose", "Estimate keypoints in one image for given person boxes; draw them and print JSON."),
    "weights": ("cli.weights", "List, download and locate the pretrained HRNet weights."),
    "posetrack": ("cli.posetrack", "Run on PoseTrack 2017/2018 and score mAP/MOTA exactly as poseval does."),
    "coco": ("cli.coco", "COCO keypoint evaluation (official HRNet test protocol, pycocotools AP)."),
    "mpii": ("cli.mpii", "MPII PCKh@0.5 evaluation with the official head-size rule."),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Real-time multi-person pose tracking with HRNet.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_line) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_line, description=help_line)
        if name == command:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def _requested_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _requested_command(argv)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        logging.getLogger("main").error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
