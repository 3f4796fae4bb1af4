"""The options every command spells the same way: pose model, person detector, tracker.

One definition of each flag, used by `track`, `gui`, `pose`, `posetrack run`
and `coco eval`. `pipeline.models` builds the models the options describe,
and `tracker_options` turns the tracker flags into `tracker.PoseTracker(**options)`.
Importing it loads numpy and OpenCV (the tracker's option table, the batch
engines), never torch or Qt, so every `--help` stays well under a second
(tests/test_conventions.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re

from pipeline.engines import LocalEngine, RayEngine
from tracker.options import OPTION_INFO, TrackerOptions

DEFAULT_POSE_CONFIG = "coco/w32_256x192"
# `--backend`'s defaults: live commands (`track`, `gui`) run the fastest backend that keeps the keypoints;
# commands that score accuracy run eager fp32, the paper's numbers, and never build anything for a short job.
# The environment variable overrides both (the test suite pins "torch").
BACKEND_ENV = "HRTRACK_BACKEND"
LIVE_BACKEND = "auto"
EXACT_BACKEND = "torch"
BACKEND_CHOICES = ("auto", "torch", "torch-compile", "torch-compile-bf16", "fp16", "bf16", "onnxruntime",
                   "onnxruntime-int8")

def positive_int(text: str) -> int:
    """argparse `type=` for counts that must be at least 1 (shared by every command)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def probability(text: str) -> float:
    """argparse `type=` for a score threshold in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def add_keypoint_threshold_argument(parser, where: str, *, effect: str = "are not drawn",
                                    default: float | None = 0.3, default_text: str = "0.3") -> None:
    """`--keypoint-threshold SCORE`: what happens to keypoints scoring below it.

    Drawing commands hide them (`effect` "are not drawn", `where`: in what);
    `posetrack run` writes them as missing, with no threshold by default.
    """
    parser.add_argument("--keypoint-threshold", type=probability, default=default, metavar="SCORE",
                        help=f"keypoints scoring below this {effect} {where} (default {default_text})")


def add_pose_model_arguments(group) -> None:
    """Which network: `--pose-config`, `--pose-weights`, `--offline` (for commands that run it, and `export`)."""
    group.add_argument(
        "--pose-config",
        metavar="CFG",
        default=DEFAULT_POSE_CONFIG,
        help=f"official-schema HRNet experiment YAML or config name (default {DEFAULT_POSE_CONFIG})",
    )
    group.add_argument(
        "--pose-weights",
        metavar="PATH_OR_NAME",
        default=None,
        help="checkpoint file or weights name (see `main.py weights list`); "
        "default: the weights name matching --pose-config",
    )
    group.add_argument("--offline", action="store_true", help="never download weights (same as HRTRACK_OFFLINE=1)")


def add_pose_arguments(parser: argparse.ArgumentParser, flip_test: bool = True, live: bool = False) -> None:
    """The pose model's flags, with the command's defaults.

    Commands that score accuracy keep the paper's flip test on and run eager fp32;
    the live commands (`track`, `gui`, `live=True`, `flip_test=False`) turn the flip
    test off, since it doubles the network's cost per person, and run `--backend auto`.
    """
    group = parser.add_argument_group("pose model")
    add_pose_model_arguments(group)
    group.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="cpu, cuda or cuda:N (default: cuda if available, else cpu)",
    )
    flip = group.add_mutually_exclusive_group()
    flip.add_argument("--flip", dest="flip_test", action="store_true", default=flip_test,
                      help="average each crop's heatmaps with its mirror image's (the paper's flip test: slightly more "
                      f"accurate, half the speed; default {'on' if flip_test else 'off'} here)")
    flip.add_argument("--no-flip", dest="flip_test", action="store_false", default=flip_test, help="skip the flip test")
    group.add_argument(
        "--decoding",
        choices=("official", "dark"),
        default="official",
        help="heatmap decoding: official quarter-pixel offset, or DARK sub-pixel refinement (default official)",
    )
    default_backend = os.environ.get(BACKEND_ENV) or (LIVE_BACKEND if live else EXACT_BACKEND)
    group.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=default_backend,
        help="how the pose network runs: torch (eager fp32, the reference), auto (starts eagerly at once; the "
        "fastest backend this hardware has whose keypoints agree with eager fp32 by OKS on reference people "
        "takes over once it is built in the background, on the first start only, then cached), onnxruntime "
        "(fp32), onnxruntime-int8 (static int8: fastest on CPUs with int8 dot products), bf16 and "
        "torch-compile-bf16 (CPUs with AVX512-BF16/AMX, or CUDA), fp16 (CUDA), torch-compile (AOTInductor; "
        "compiling takes minutes). Built models are cached under $HRTRACK_CACHE/backends (default "
        f"~/.cache/hrtrack/backends). Default here: {default_backend} (${BACKEND_ENV} overrides)",
    )
    group.add_argument(
        "--calibration",
        nargs="+",
        default=None,
        metavar="PATH",
        help="int8 (onnxruntime-int8, and auto where it tries int8): images and videos of your scenes to "
        "calibrate the int8 ranges on, cropped at the person boxes of the detector (or --det-file/--gt-boxes); "
        "videos give 8 frames each (default: the reference people of backend agreement)",
    )
    group.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="person crops per network call (the flip test doubles it; default by device, measured with "
        "benchmarks/pose_throughput.py: 8 on the CPU, where 32-crop calls are slower per crop, 64 on CUDA)",
    )


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("person detector")
    group.add_argument(
        "--detector",
        metavar="NAME",
        default=None,
        help="'fast' (ssdlite320_mobilenet_v3_large), 'accurate' (fasterrcnn_resnet50_fpn_v2) or any torchvision "
        "detection builder, e.g. fasterrcnn_mobilenet_v3_large_320_fpn (default 'auto': accurate on CUDA, fast on the CPU)",
    )
    group.add_argument(
        "--det-weights",
        metavar="PATH",
        default=None,
        help="local state dict for --detector instead of torchvision's COCO weights (downloaded to the torch hub cache)",
    )
    sources = group.add_mutually_exclusive_group()
    sources.add_argument(
        "--det-file",
        metavar="PATH",
        default=None,
        help="read boxes from a COCO-results detection JSON (list of image_id, bbox [x,y,w,h], score) instead of a network",
    )
    sources.add_argument(
        "--gt-boxes",
        metavar="ANNOTATIONS",
        default=None,
        help="use the ground-truth person boxes of this COCO/PoseTrack annotation file (cleaned as the official test does)",
    )
    group.add_argument(
        "--det-annotations",
        metavar="PATH",
        default=None,
        help="annotation file whose 'images' list maps frame file names to the image ids of --det-file "
        "(without it: a numeric file name is the id, e.g. 000000000785.jpg -> 785; video frames use their index)",
    )
    group.add_argument(
        "--det-image-key",
        choices=("auto", "path", "index"),
        default="auto",
        help="how --det-file/--gt-boxes find a frame's image id: by file path, by frame index, or auto (path if the frame has one)",
    )
    group.add_argument("--det-threshold", type=probability, default=0.5, metavar="SCORE", help="keep boxes scoring at least this (default 0.5)")
    group.add_argument("--det-min-size", type=non_negative_float, default=0.0, metavar="PX", help="drop boxes narrower or lower than this many pixels")
    group.add_argument(
        "--det-nms",
        type=probability,
        default=0.5,
        metavar="IOU",
        help="NMS IoU threshold applied to the person boxes of a network detector (default 0.5; detection files are used as given)",
    )
    group.add_argument("--det-half", action="store_true", help="run the detector in half precision (CUDA only)")


# Tracker options with their own flag (and its metavar); every other TrackerOptions
# field goes through --tracker-option. Help texts and choices come from
# tracker.OPTION_INFO, the defaults from TrackerOptions: written once, in the tracker.
_TRACKER_FLAGS = {
    "similarity": ("--track-similarity", None),
    "matching": ("--track-matching", None),
    "similarity_threshold": ("--track-threshold", "SIM"),
    "max_age": ("--track-max-age", "FRAMES"),
    "min_hits": ("--track-min-hits", "N"),
    "min_score": ("--track-min-score", "SCORE"),
    "smoothing": ("--track-smoothing", None),
    "reid": ("--track-reid", "{off,appearance,MODEL.onnx}"),
}


def check_model_files(args: argparse.Namespace) -> None:
    """FileNotFoundError naming the flag when a file the models need is absent: checked before any model loads."""
    from pose.config import config_path  # noqa: PLC0415 - YAML only; keeps --help free of the pose layer
    from pose.weights import REGISTRY  # noqa: PLC0415 - as above

    try:
        config_path(args.pose_config)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"--pose-config: {error}") from None
    weights = args.pose_weights
    if weights is not None and weights not in REGISTRY and not os.path.isfile(os.path.expanduser(weights)):
        raise FileNotFoundError(f"--pose-weights {weights}: no such file, and not a weights name "
                                f"(`main.py weights list` shows the names)")
    for flag in ("--det-file", "--det-annotations", "--gt-boxes", "--det-weights"):
        value = getattr(args, _flag_attribute(flag), None)
        if value is not None and not os.path.isfile(value):
            raise FileNotFoundError(f"{flag} {value}: no such file")


def _flag_attribute(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def add_tracker_arguments(parser: argparse.ArgumentParser):
    """The tracker flags (a few `tracker.TrackerOptions` fields, and `--tracker-option KEY=VALUE` for any other)."""
    defaults = {field.name: field.default for field in dataclasses.fields(TrackerOptions)}
    track = parser.add_argument_group("tracker (tracker.PoseTracker options; defaults are the tracker's)")
    for name, (flag, metavar) in _TRACKER_FLAGS.items():
        info = OPTION_INFO[name]
        choices = None if info.path_allowed else info.choices  # a path is checked by TrackerOptions
        track.add_argument(flag, dest=_flag_attribute(flag), choices=choices, default=None, metavar=metavar,
                           type=None if info.choices else type(defaults[name]),
                           help=f"{info.help} Default: {defaults[name]}.")
    track.add_argument("--track-flow", action="store_true", help=OPTION_INFO["flow"].help)
    others = ", ".join(name for name in OPTION_INFO if name not in _TRACKER_FLAGS and name != "flow")
    track.add_argument("--tracker-option", action="append", default=[], metavar="KEY=VALUE",
                       help=f"any other tracker.TrackerOptions field ({others}), e.g. "
                            "--tracker-option lost_scale_growth=0.2")
    return track


def _parse_value(key: str, text: str, default):
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"--tracker-option {key}: expected true/false, got {text!r}")
        return lowered in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if default is None or isinstance(default, tuple):
        return tuple(float(v) for v in text.split(",")) if key == "sigmas" else text
    return text


def tracker_options(args: argparse.Namespace) -> dict:
    """The `tracker.PoseTracker(**options)` that the tracker flags describe (only options the user set)."""
    defaults = {field.name: field.default for field in dataclasses.fields(TrackerOptions)}
    options = {}
    for item in args.tracker_option:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or key not in defaults:
            raise ValueError(f"--tracker-option {item!r}: expected KEY=VALUE with KEY one of {sorted(defaults)}")
        try:
            options[key] = _parse_value(key, value, defaults[key])
        except ValueError as error:
            raise ValueError(f"--tracker-option {item!r}: {error}") from error
    for key, (flag, _) in _TRACKER_FLAGS.items():
        value = getattr(args, _flag_attribute(flag), None)
        if value is not None:
            options[key] = value
    if args.track_flow:
        options["flow"] = True
    try:  # checked now, before any model loads, in the words the user typed
        TrackerOptions(**options)
    except ValueError as error:
        raise ValueError(_as_flags(str(error), args)) from None
    return options


def _as_flags(message: str, args: argparse.Namespace) -> str:
    """A `TrackerOptions` error with each field named by the flag that set it."""
    def flag(match: re.Match) -> str:
        name = match.group(1)
        own = _TRACKER_FLAGS.get(name)
        if own is not None and getattr(args, _flag_attribute(own[0]), None) is not None:
            return own[0]
        return "--track-flow" if name == "flow" else f"--tracker-option {name}"

    named, count = re.subn(r"TrackerOptions\.(\w+)", flag, message)
    if count:
        return named
    # A check of several fields at once: name everything the user set.
    typed = [f"--tracker-option {item}" for item in args.tracker_option]
    typed += [f"{own} {getattr(args, _flag_attribute(own))}" for own, _ in _TRACKER_FLAGS.values()
              if getattr(args, _flag_attribute(own), None) is not None]
    return f"{', '.join(typed) or 'tracker options'}: {message.removeprefix('TrackerOptions: ')}"


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    """`--profile`: per-stage time per frame, queue waits and fps, printed at the end (and in the JSON output)."""
    parser.add_argument("--profile", action="store_true",
                        help="print per-stage ms per frame (capture, detection, crop, network, decode, tracking, "
                        "sinks), queue waits and fps at the end; also written to the JSON output's \"profile\"")


def non_negative_float(text: str) -> float:
    """argparse `type=` for an amount that may be 0 or fractional (GPUs per worker)."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """`--engine local|ray` and the Ray engine's flags (`pipeline.engines.RayEngine`), for every batch command."""
    group = parser.add_argument_group(
        "engine (where the videos are processed)",
        "--engine ray runs each video as a task on long-lived Ray workers that load the models once; "
        "without --address it starts Ray on this machine with every CPU core and GPU. By default the "
        "workers write the outputs themselves to --out, which must then be a folder every worker sees at "
        "the same path (a shared filesystem); with --gather they send them back and this machine writes "
        "them. Inputs, weights and detection files must be readable by every worker at the paths given. "
        "Needs the optional extra: pip install 'hrtrack[ray]'.")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: one video after another in this process (default); ray: on Ray workers")
    group.add_argument("--address", default=None, metavar="ADDRESS",
                       help="Ray cluster to join: 'auto' (this node's running cluster) or ray://HOST:10001 "
                       "(default: start a Ray instance on this machine)")
    group.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="Ray workers (default: one per GPU, or per CPU core when no GPU; at most one per video)")
    group.add_argument("--gpus-per-worker", type=non_negative_float, default=None, metavar="G",
                       help="GPUs per Ray worker, fractions allowed (0.5: two workers share a GPU; "
                       "default 1 when the cluster has GPUs and --device is not cpu, else 0)")
    group.add_argument("--cpus-per-worker", type=positive_int, default=None, metavar="C",
                       help="CPU cores reserved per Ray worker, also its torch threads (default: the cores "
                       "shared evenly among the workers)")
    group.add_argument("--gather", action="store_true",
                       help="Ray workers send their outputs back and this machine writes them to --out (for "
                       "clusters without a shared filesystem); without it the workers write to --out themselves")
    group.add_argument("--retries", type=int, default=2, metavar="N",
                       help="times a video is retried on another worker after its Ray worker died "
                       "(killed, out of memory; default 2)")


def engine_from_args(args: argparse.Namespace):
    """The `pipeline.engines` engine the engine flags describe; ValueError for Ray flags without --engine ray."""
    ray_flags = {"--address": args.address, "--workers": args.workers, "--gpus-per-worker": args.gpus_per_worker,
                 "--cpus-per-worker": args.cpus_per_worker, "--gather": args.gather or None}
    if args.engine == "local":
        given = [flag for flag, value in ray_flags.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only with --engine ray")
        return LocalEngine()
    if args.retries < 0:
        raise ValueError(f"--retries must be >= 0, got {args.retries}")
    gpus = args.gpus_per_worker
    if gpus is None and str(getattr(args, "device", None) or "").startswith("cpu"):
        gpus = 0.0
    return RayEngine(address=args.address, workers=args.workers, gpus_per_worker=gpus,
                     cpus_per_worker=args.cpus_per_worker, gather=args.gather, max_retries=args.retries)
