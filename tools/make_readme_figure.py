"""Draw docs/output_example.png: what hrtrack's output looks like on a real frame.

The poses come from the COCO ground-truth annotations of a test image (no
pretrained weights are needed to build the docs), drawn with the same
`pipeline.drawing.draw_poses` the `track` command and the GUI use, with one ID
per person.

    python tools/make_readme_figure.py [--out docs/output_example.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from pipeline.drawing import draw_poses
from core.skeletons import COCO_SKELETON

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "tests/data/coco_mini/000000196141.jpg"
ANNOTATIONS = ROOT / "tests/data/coco_mini/test_coco.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/output_example.png")
    args = parser.parse_args()

    image = cv2.imread(str(IMAGE))
    if image is None:
        raise SystemExit(f"cannot read {IMAGE}")
    coco = json.loads(ANNOTATIONS.read_text())
    image_id = int(IMAGE.stem)
    people = [a for a in coco["annotations"] if a["image_id"] == image_id and a["num_keypoints"] > 0]
    keypoints = np.array([a["keypoints"] for a in people], np.float32).reshape(len(people), 17, 3)
    boxes_xywh = np.array([a["bbox"] for a in people], np.float32)
    boxes = np.concatenate([boxes_xywh[:, :2], boxes_xywh[:, :2] + boxes_xywh[:, 2:]], axis=1)
    # Visibility flags (0/1/2) stand in for confidences: unlabeled joints are not drawn.
    scores = (keypoints[..., 2] > 0).astype(np.float32)
    drawn = draw_poses(
        image, keypoints[..., :2], scores, COCO_SKELETON,
        track_ids=np.arange(1, len(people) + 1), boxes=boxes, show_boxes=True,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), drawn)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
