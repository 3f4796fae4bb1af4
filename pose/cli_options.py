"""The pose options every command spells the same way, and the estimator they describe.

Only argparse at import time: torch loads when `build_estimator` runs.
`--device` and `--offline` are shared with the detector options
(`detector/cli_options.py` reads them from the same namespace).
"""

from __future__ import annotations

import argparse

DEFAULT_POSE_CONFIG = "coco/w32_256x192"


def positive_int(text: str) -> int:
    """argparse `type=` for counts that must be at least 1 (shared by every command)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_pose_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pose model")
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
    group.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="cpu, cuda or cuda:N (default: cuda if available, else cpu)",
    )
    group.add_argument("--offline", action="store_true", help="never download weights (same as HRTRACK_OFFLINE=1)")
    group.add_argument("--no-flip", action="store_true", help="skip the flip test (about 2x faster, slightly less accurate)")
    group.add_argument(
        "--decoding",
        choices=("official", "dark"),
        default="official",
        help="heatmap decoding: official quarter-pixel offset, or DARK sub-pixel refinement (default official)",
    )
    group.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        metavar="N",
        help="person crops per network call (the flip test doubles it; default 32)",
    )


def resolve_device(device: str | None) -> str:
    """None or "auto" -> "cuda" when available, else "cpu"; anything else unchanged."""
    if device in (None, "auto"):
        import torch  # noqa: PLC0415 -- keep `--help` free of torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def build_estimator(args: argparse.Namespace):
    """The `pose.PoseEstimator` that `args` (from `add_pose_arguments`) describe.

    Raises ValueError when no weights are given and no weights name matches
    the config, FileNotFoundError for a missing config or weights file.
    """
    from pose.estimator import PoseEstimator, weights_name_for_config  # noqa: PLC0415

    weights = args.pose_weights
    if weights is None:
        weights = weights_name_for_config(args.pose_config)
        if weights is None:
            raise ValueError(
                f"no known weights match the pose config {args.pose_config!r}: pass --pose-weights PATH_OR_NAME"
            )
    return PoseEstimator.from_config(
        args.pose_config,
        weights=weights,
        device=resolve_device(args.device),
        flip_test=not args.no_flip,
        decoding=args.decoding,
        batch_size=args.batch_size,
        offline=True if args.offline else None,
    )
