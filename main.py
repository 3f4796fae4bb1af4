"""hrtrack: real-time multi-person pose tracking with HRNet.

The one command-line entry point. Each subcommand lives in its own module,
which is imported only when that subcommand runs, so `--help` stays fast.
A command module defines `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

logger = logging.getLogger(__name__)

# name -> (module, one-line help). Order is the order `--help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "track": ("cli.track", "Track poses in a video, a folder of videos or a folder of frames; write JSON/CSV/video."),
    "gui": ("cli.gui", "Open the desktop window: live skeletons with track IDs on a camera, file or URL."),
    "pose": ("cli.pose", "Estimate keypoints in one image for given person boxes; draw them and print JSON."),
    "weights": ("cli.weights", "List, download and locate the pretrained HRNet weights."),
    "posetrack": ("cli.posetrack", "Run on PoseTrack 2017/2018/21 and score them exactly as poseval (mAP, MOTA) or the PoseTrack21 kit (HOTA, mAP) does."),
    "coco": ("cli.coco", "COCO keypoint evaluation (official HRNet test protocol, pycocotools AP)."),
    "mpii": ("cli.mpii", "MPII PCKh@0.5 evaluation with the official head-size rule."),
    "train": ("cli.train", "Train or fine-tune HRNet with the paper's recipe (one process or torchrun)."),
    "export": ("cli.export", "Export the pose network as an ONNX file (fp32, or static int8 calibrated on your footage)."),
}


def _program_name() -> str:
    """How the user started us, for usage lines: `hrtrack` (the installed script) or `main.py`."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "hrtrack" if name.startswith("hrtrack") else "main.py"


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_program_name(),
        description="Real-time multi-person pose tracking with HRNet.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_line) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_line, description=help_line)
        if name == command:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


class _CtrlC:
    """SIGINT policy for the command-line run: the first Ctrl-C stops cleanly, the second at once.

    The first raises KeyboardInterrupt as Python does: the pipeline stops its
    threads (after the model call in flight, which cannot be interrupted) and
    the command returns 130 with partial outputs left as `.part` files. A
    second one during that wait ends the process at once with status 130
    through `os._exit`: an ordinary exit would finalise the interpreter under
    a running torch call, which aborts ("terminate called without an active
    exception", SIGABRT). The `.part` files stay on disk for the rerun.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum, frame) -> None:
        self.count += 1
        if self.count == 1:
            raise KeyboardInterrupt
        sys.stderr.write("second Ctrl-C: exiting now (partial outputs stay as .part files)\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)


def _requested_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _requested_command(argv)
    parser = build_parser(command if command in COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    module_name = COMMANDS[args.command][0]
    # A command may collect trailing words (argparse cannot put a nargs="*" positional
    # after options in a subcommand): `train CONFIG --out DIR KEY VALUE ...`.
    trailing = getattr(importlib.import_module(module_name), "TRAILING_ARGUMENTS", None) if extra else None
    if extra:
        unknown = [word for word in extra if word.startswith("-")]
        if trailing is None or unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
        setattr(args, trailing, list(getattr(args, trailing, None) or []) + extra)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(module_name)
    previous = None
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        previous = signal.signal(signal.SIGINT, _CtrlC())  # the GUI sets its own while its window is open
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
