"""The detector options every command spells the same way, and the detector they describe.

Only argparse at import time: torch is imported when `build_detector` runs.
`--device` and `--offline` are shared with the pose options
(`pose/cli_options.py`); `build_detector` reads them from `args` when present.
"""

from __future__ import annotations

import argparse


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("person detector")
    group.add_argument(
        "--detector",
        metavar="NAME",
        default=None,
        help="torchvision detection builder, e.g. fasterrcnn_resnet50_fpn_v2 or "
        "fasterrcnn_mobilenet_v3_large_fpn (default 'auto': the first on CUDA, the second on the CPU)",
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
    group.add_argument("--det-threshold", type=float, default=0.5, metavar="SCORE", help="keep boxes scoring at least this (default 0.5)")
    group.add_argument("--det-min-size", type=float, default=0.0, metavar="PX", help="drop boxes narrower or lower than this many pixels")
    group.add_argument(
        "--det-nms",
        type=float,
        default=0.5,
        metavar="IOU",
        help="NMS IoU threshold applied to the person boxes of a network detector (default 0.5; detection files are used as given)",
    )
    group.add_argument("--det-half", action="store_true", help="run the detector in half precision (CUDA only)")


def build_detector(args: argparse.Namespace, device: str | None = None):
    """The detector `args` describe: a file, ground truth, or a torchvision network.

    `device` overrides `args.device` (from the pose options); None or "auto"
    picks CUDA when available.
    """
    from detector.file_detector import FileDetector  # noqa: PLC0415
    from detector.ground_truth import GroundTruthDetector  # noqa: PLC0415

    if args.det_file is not None or args.gt_boxes is not None:
        if args.detector is not None or args.det_weights is not None:
            raise ValueError("--detector/--det-weights cannot be combined with --det-file or --gt-boxes")
        if args.gt_boxes is not None:
            return GroundTruthDetector(args.gt_boxes, key=args.det_image_key)
        return FileDetector(
            args.det_file,
            annotation_path=args.det_annotations,
            key=args.det_image_key,
            score_threshold=args.det_threshold,
            min_box_size_px=args.det_min_size,
        )

    from detector.torchvision_detector import build_detector as build_network_detector  # noqa: PLC0415
    from pose.cli_options import resolve_device  # noqa: PLC0415

    return build_network_detector(
        args.detector or "auto",
        weights=args.det_weights,
        device=resolve_device(device if device is not None else getattr(args, "device", None)),
        score_threshold=args.det_threshold,
        min_box_size_px=args.det_min_size,
        nms_iou_threshold=args.det_nms,
        half=args.det_half,
        offline=True if getattr(args, "offline", False) else None,
    )
