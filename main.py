"""hrtrack: real-time multi-person pose tracking with HRNet.

The one command-line entry point. Each subcommand lives in its own module,
which is imported only when that subcommand runs, so `--help` stays fast.
A command module defines `add_arguments(parser)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import logging.config
import os
import signal
import sys
import threading

logger = logging.getLogger(__name__)

# Our own packages: a missing one of these is a broken checkout, not a missing install.
_OWN_PACKAGES = ("app", "cli", "core", "detector", "evaluation", "pipeline", "pose", "tracker")

# Native libraries write to the process's stderr past our logging: FFmpeg's demuxer ("moov
# atom not found" for a cut mp4) and OpenCV's own warnings ("findDecoder imread_", "Failed to
# write frame"). Each of those failures reaches the user as one message of ours naming the
# file, so theirs are off unless the user set these variables or asked for --verbose.
# Read when OpenCV loads and when it first opens a video: set before any command runs.
_QUIET_NATIVE = {"OPENCV_FFMPEG_LOGLEVEL": "-8", "OPENCV_LOG_LEVEL": "ERROR"}
# torch's C++-extension helper, loaded by torch.compile, warns "No CUDA runtime is found,
# using CUDA_HOME=..." on every CPU-only machine that has CUDA_HOME set: nothing to act on.
_QUIET_LOGGERS = ("torch.utils.cpp_extension",)

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
            sys.stderr.write("Ctrl-C: stopping after the model call in flight (press Ctrl-C again to quit at once)\n")
            sys.stderr.flush()
            raise KeyboardInterrupt
        sys.stderr.write("second Ctrl-C: exiting now (partial outputs stay as .part files)\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)


def _requested_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _missing_dependency_message(error: ModuleNotFoundError) -> str | None:
    """What to do when a third-party package is missing (None when the missing module is our own)."""
    name = (error.name or "").split(".")[0]
    if not name or name in _OWN_PACKAGES:
        return None
    return (f"{_program_name()}: the Python package '{name}' is missing from this Python ({sys.executable}).\n"
            f"Run `make install` and use .venv/bin/python main.py ... (or .venv/bin/hrtrack), "
            f"or activate the environment first: source .venv/bin/activate\n")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except ModuleNotFoundError as error:
        message = _missing_dependency_message(error)
        if message is None:
            raise
        sys.stderr.write(message)
        return 2


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-v" not in argv and "--verbose" not in argv:
        for name, value in _QUIET_NATIVE.items():
            os.environ.setdefault(name, value)
        # Levels of other packages' loggers (ours are set by basicConfig below).
        logging.config.dictConfig({"version": 1, "incremental": True,
                                   "loggers": {name: {"level": "ERROR"} for name in _QUIET_LOGGERS}})
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
