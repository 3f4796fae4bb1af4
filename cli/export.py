"""`main.py export --format onnx --out FILE`: the pose network as an ONNX file (fp32, or static int8).

    main.py export --format onnx --out hrnet.onnx
    main.py export --format onnx --int8 --calibration scene1.mp4 frames/*.jpg --out hrnet_int8.onnx

The file has a dynamic batch axis: input "input" (N, 3, H, W) float32
(ImageNet-normalised crops, RGB when the config says COLOR_RGB), output
"heatmaps" (N, J, H/4, W/4) float32. An fp32 export is checked against eager
PyTorch on a random batch before it is kept. `--int8` quantises statically
(QDQ, per-channel weights) with activation ranges calibrated on person crops
from the images and videos given: faster on CPUs with int8 dot products, but
less accurate. The `track`/`pose` commands export and cache their own model
with `--backend onnxruntime`; this command is for using the file elsewhere.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

import pose
from cli.options import add_detector_arguments, add_pose_model_arguments
from core.io import atomic_output
from pipeline.models import person_calibration_crops
from pose.backends.calibration import calibration_crops, check_calibration_paths
from pose.backends.onnx import OnnxRuntimeSession, export_onnx, quantize_int8
from pose.estimator import weights_name_for_config

logger = logging.getLogger(__name__)

# Largest |ONNX - eager| heatmap difference accepted for an fp32 export (measured: ~2e-7).
FP32_TOLERANCE = 1e-4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("onnx",), required=True, help="file format (onnx: ONNX opset 18)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write (written whole or not at all)")
    parser.add_argument("--int8", action="store_true",
                        help="static int8 (QDQ, per-channel weights) calibrated on --calibration: about 2-3x faster "
                        "on CPUs with int8 dot products (VNNI), but it trades accuracy: keypoints move (measure "
                        "with benchmarks/onnx_backends.py before relying on it)")
    parser.add_argument("--calibration", nargs="+", default=None, metavar="PATH",
                        help="--int8: images and videos of the scenes the model will see; person crops are made "
                        "from them as the estimator makes them (videos: 8 frames each, evenly spaced; at most "
                        "64 crops and their mirror images)")
    parser.add_argument("--calibration-boxes", choices=("detector", "whole"), default="detector",
                        help="--int8: where the calibration crops are: the person detector's boxes (the detector "
                        "options below, or --det-file/--gt-boxes), or the whole image as one box (no detector; "
                        "calibrates worse). Default detector")
    add_pose_model_arguments(parser.add_argument_group("pose model"))
    add_detector_arguments(parser)


def _check_arguments(args: argparse.Namespace) -> str | None:
    if args.int8 and not args.calibration:
        return "--int8 needs --calibration PATH ... (images or videos to calibrate the int8 ranges on)"
    if args.calibration and not args.int8:
        return "--calibration is only used with --int8"
    return None


def _calibration_crops(args, input_hw: tuple[int, int], color_rgb: bool):
    if args.calibration_boxes == "detector":
        return person_calibration_crops(args, args.calibration)
    check_calibration_paths(args.calibration)
    return calibration_crops(args.calibration, input_hw, color_rgb=color_rgb)


def _check_fp32(model, path: Path, input_hw: tuple[int, int]) -> float:
    """Largest |ONNX Runtime - eager| heatmap difference on a random batch of 2."""
    import torch  # noqa: PLC0415  (heavy: only once the model is built)

    batch = np.random.default_rng(0).standard_normal((2, 3, *input_hw), dtype=np.float32)
    with torch.inference_mode():
        eager = model(torch.from_numpy(batch)).numpy()
    return float(np.abs(OnnxRuntimeSession(path)(batch) - eager).max())


def run(args: argparse.Namespace) -> int:
    message = _check_arguments(args)
    if message:
        logger.error("%s", message)
        return 2
    out = Path(args.out)
    if out.is_dir():
        logger.error("--out %s is a folder; give a file name", out)
        return 2
    weights = args.pose_weights or weights_name_for_config(args.pose_config)
    if weights is None:
        logger.error("no known weights match the pose config %r: pass --pose-weights PATH_OR_NAME", args.pose_config)
        return 2
    started = time.perf_counter()
    try:
        experiment = pose.load_config(args.pose_config)
        path = pose.resolve_weights(weights, offline=True if args.offline else None)
        model = pose.build_model(experiment)
        pose.load_weights(model, path)
        width, height = experiment.model.image_size
        crops = _calibration_crops(args, (height, width), bool(experiment.dataset.color_rgb)) if args.int8 else None
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 2
    model.eval()
    try:
        if crops is None:
            with atomic_output(out) as part:
                export_onnx(model, part, (height, width))
                difference = _check_fp32(model, part, (height, width))
                if difference > FP32_TOLERANCE:
                    raise ValueError(f"the exported model differs from PyTorch by {difference:.2e} (over "
                                     f"{FP32_TOLERANCE:g}); {out} was not written")
            logger.info("fp32 export matches PyTorch to %.1e on a random batch", difference)
        else:
            with tempfile.TemporaryDirectory(dir=out.parent if out.parent.is_dir() else None) as folder:
                fp32 = export_onnx(model, Path(folder) / "fp32.onnx", (height, width))
                quantize_int8(fp32, out, crops)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 2
    logger.info("wrote %s (%s, %.1f MB, input %dx%d HxW, dynamic batch) in %.1f s", out,
                "static int8" if crops is not None else "fp32", out.stat().st_size / 1e6, height, width,
                time.perf_counter() - started)
    return 0
