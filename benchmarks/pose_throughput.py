"""Pose throughput: crops per second of HRNet at several batch sizes, flip test on and off.

    .venv/bin/python benchmarks/pose_throughput.py              # W32 256x192, batches 1 8 32
    .venv/bin/python benchmarks/pose_throughput.py --quick      # small and fast (CPU smoke run)
    .venv/bin/python benchmarks/pose_throughput.py --device cuda --dtype float16 --json out.json

Random weights are fine: the cost does not depend on the weight values. The
three stages of `PoseEstimator` are timed separately, each as the median of
several repeats after a warm-up:

- preprocess: box -> center/scale, `cv2.warpAffine` crop, BGR->RGB, normalise
  (on a synthetic 1280x720 frame);
- network: `PoseEstimator.infer_heatmaps` (one call of `batch` crops, or
  2 x batch with the flip test, plus flip-back and averaging);
- decode: argmax + quarter offset (or DARK) + back to image pixels.

Results go to stdout as a table (and optionally JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from core.environment import resolve_device
from pose.estimator import PoseEstimator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

logger = logging.getLogger(__name__)


def median_seconds(function, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_frame_and_boxes(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 1280x720 BGR noise frame and `count` person-sized xyxy boxes inside it."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    heights = rng.uniform(150, 500, count)
    widths = heights * rng.uniform(0.3, 0.6, count)
    x1 = rng.uniform(0, 1280 - widths)
    y1 = rng.uniform(0, 720 - heights)
    return frame, np.stack([x1, y1, x1 + widths, y1 + heights], axis=1)


def run(args: argparse.Namespace) -> list[dict]:
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    estimator = PoseEstimator.from_config(
        args.config, weights=None, device=device, decoding=args.decoding, dtype=args.dtype, batch_size=max(args.batch_sizes)
    )
    logger.info("%s on %s (%s), torch %s, %d CPU threads", estimator, device, args.dtype, torch.__version__, torch.get_num_threads())
    rows = []
    for batch in args.batch_sizes:
        frame, boxes = synthetic_frame_and_boxes(batch)
        centers, scales = estimator.centers_scales(boxes)
        crops = estimator.preprocess(frame, centers, scales)
        preprocess_s = median_seconds(lambda: estimator.preprocess(frame, centers, scales), args.repeats, args.warmup)
        for flip in args.flip:
            estimator.flip_test = flip
            network_s = median_seconds(lambda: estimator.infer_heatmaps(crops), args.repeats, args.warmup)
            heatmaps = estimator.infer_heatmaps(crops)
            decode_s = median_seconds(lambda: estimator.codec.decode(heatmaps, centers, scales), args.repeats, args.warmup)
            total_s = preprocess_s + network_s + decode_s
            row = {
                "batch": batch,
                "flip_test": flip,
                "network_ms_per_batch": 1e3 * network_s,
                "network_crops_per_s": batch / network_s,
                "preprocess_ms_per_crop": 1e3 * preprocess_s / batch,
                "decode_ms_per_crop": 1e3 * decode_s / batch,
                "end_to_end_ms_per_batch": 1e3 * total_s,
                "end_to_end_crops_per_s": batch / total_s,
            }
            rows.append(row)
            logger.info("batch %d flip %s done", batch, flip)
    return rows


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'batch':>5} {'flip':>5} {'net ms/batch':>13} {'net crops/s':>12} {'pre ms/crop':>12} "
          f"{'dec ms/crop':>12} {'e2e ms/batch':>13} {'e2e crops/s':>12}")
    for row in rows:
        print(
            f"{row['batch']:>5} {str(row['flip_test']):>5} {row['network_ms_per_batch']:>13.1f} "
            f"{row['network_crops_per_s']:>12.1f} {row['preprocess_ms_per_crop']:>12.2f} "
            f"{row['decode_ms_per_crop']:>12.3f} {row['end_to_end_ms_per_batch']:>13.1f} {row['end_to_end_crops_per_s']:>12.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="coco/w32_256x192", help="experiment config name or YAML (default coco/w32_256x192)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default cuda if available)")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--decoding", choices=("official", "dark"), default="official")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--quick", action="store_true", help="batches 1 and 8, 2 repeats, 1 warm-up")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    args.flip = [False, True]
    if args.quick:
        args.batch_sizes = [b for b in args.batch_sizes if b <= 8] or [1]
        args.repeats, args.warmup = 2, 1
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = run(args)

    header = (f"# {args.config} {args.dtype} decoding={args.decoding} on {resolve_device(args.device)} "
              f"({platform.processor() or platform.machine()})")
    print_table(rows, header)
    if args.json:
        Path(args.json).write_text(json.dumps({"config": args.config, "dtype": args.dtype, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
