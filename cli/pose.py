"""`main.py pose IMAGE --boxes x1,y1,x2,y2 ...`: keypoints of given people in one image.

Prints one JSON document to stdout:

    {"image": ..., "keypoint_names": [...], "people": [
        {"box": [x1, y1, x2, y2], "keypoints": [[x, y, score], ...]}, ...]}

(image pixels, x right, y down) and, with --out, writes the image with the
skeletons drawn.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from cli.options import add_keypoint_threshold_argument, add_pose_arguments
from core.io import read_image, write_text_atomic
from pipeline.models import build_estimator

logger = logging.getLogger(__name__)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """"x1,y1,x2,y2" (image px) -> 4 floats; argparse error naming the text otherwise."""
    parts = text.split(",")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(v == v and abs(v) != float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"box {text!r} must be four numbers x1,y1,x2,y2")
    x1, y1, x2, y2 = values
    if x2 <= x1 or y2 <= y1:
        raise argparse.ArgumentTypeError(f"box {text!r} must have x2 > x1 and y2 > y1")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="image file (read by core.io.read_image: EXIF orientation ignored, like the official code and every other command)")
    parser.add_argument(
        "--boxes",
        nargs="+",
        type=parse_box,
        required=True,
        metavar="X1,Y1,X2,Y2",
        help="one or more person boxes in image pixels (a box starting with a minus sign needs the "
        "--boxes=-5,0,100,200 spelling, and then it is the only box)",
    )
    parser.add_argument("--out", metavar="OUT.jpg", default=None, help="write the image with the skeletons drawn")
    add_keypoint_threshold_argument(parser, "in the image (the JSON has all keypoints)")
    add_pose_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pipeline.drawing import draw_poses  # noqa: PLC0415 - supervision (about 1.5 s), only when the image is drawn

    try:
        image = read_image(args.image)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 2
    if args.out and not cv2.haveImageWriter(args.out):
        logger.error("--out %s: OpenCV has no image writer for that extension (use e.g. .jpg or .png)", args.out)
        return 2
    boxes = np.asarray(args.boxes, dtype=np.float64).reshape(-1, 4)
    try:
        estimator = build_estimator(args)
    except (FileNotFoundError, ValueError) as error:
        logger.error("%s", error)
        return 2
    keypoints, scores = estimator(image, boxes)
    people = [
        {
            "box": [float(v) for v in box],
            "keypoints": [[float(x), float(y), float(s)] for (x, y), s in zip(person, person_scores)],
        }
        for box, person, person_scores in zip(boxes, keypoints, scores)
    ]
    document = {"image": args.image, "keypoint_names": list(estimator.keypoint_names), "people": people}
    json.dump(document, sys.stdout, indent=1)
    sys.stdout.write("\n")
    if args.out:
        drawn = draw_poses(
            image,
            keypoints,
            scores,
            estimator.skeleton,
            track_ids=np.arange(len(boxes)),
            boxes=boxes,
            keypoint_threshold=args.keypoint_threshold,
            show_boxes=True,
        )
        try:
            # Encoded in memory, then written by the one atomic writer: never a half image under its name.
            encoded, data = cv2.imencode(Path(args.out).suffix, drawn)
        except cv2.error as error:
            encoded = False
            logger.debug("encoding %s: %s", args.out, error)
        if not encoded:
            logger.error("could not write %s (OpenCV cannot encode that image extension)", args.out)
            return 2
        try:
            write_text_atomic(args.out, data.tobytes())
        except OSError as error:
            logger.error("could not write %s: %s", args.out, error)
            return 2
        logger.info("wrote %s", args.out)
    return 0
