"""Memory over a long `track` run: peak resident memory must stay flat (no growth beyond 5% after frame 500).

    .venv/bin/python benchmarks/memory.py                    # 10,000 frames, tiny model, boxes from a file
    .venv/bin/python benchmarks/memory.py --frames 2000 --json memory.json

Writes a synthetic video (160x120, moving blocks, MJPG) and a detection file
with three people per frame, then runs `main.py track` on it as a subprocess
(the tiny test model, so the run takes minutes, not hours) and samples the
subprocess's resident memory (VmRSS) and peak (VmHWM) from /proc twice a
second. The frames done at each sample are the lines of the growing JSON
output (one line per frame). Linux only (/proc).

Reports the curve (frames, RSS MB, peak MB) and the ratio of the final peak
to the peak at frame 500; the target is <= 1.05.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "hrnet_reference"
SIZE = (160, 120)
PEOPLE = 3


def write_video(path: Path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, SIZE)
    for index in range(frames):
        image = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
        for person in range(PEOPLE):
            x = (index * (person + 1) + 40 * person) % (SIZE[0] - 30)
            image[20:110, x:x + 30] = (60 * person + 80, 120, 200)
        writer.write(image)
    writer.release()


def write_boxes(path: Path, frames: int) -> None:
    entries = [{"image_id": index, "category_id": 1, "score": 0.9,
                "bbox": [float((index * (person + 1) + 40 * person) % (SIZE[0] - 30)), 20.0, 30.0, 90.0]}
               for index in range(frames) for person in range(PEOPLE)]
    path.write_text(json.dumps(entries))


def memory_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a process in MB, or None once it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except KeyError:
        return None


def frames_written(part: Path, final: Path) -> int:
    path = part if part.exists() else final
    try:
        with open(path, "rb") as handle:
            return max(0, sum(1 for _ in handle) - 1)  # the header line holds no frame... until the first frame
    except FileNotFoundError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--interval-s", type=float, default=0.5)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hrtrack_memory_") as scratch:
        folder = Path(scratch)
        video, boxes, out = folder / "long.avi", folder / "boxes.json", folder / "out"
        write_video(video, args.frames)
        write_boxes(boxes, args.frames)
        command = [sys.executable, str(ROOT / "main.py"), "track", str(video), "--out", str(out),
                   "--det-file", str(boxes), "--det-image-key", "index", "--no-progress", "--device", "cpu",
                   "--pose-config", str(DATA / "dev_tiny.yaml"), "--pose-weights", str(DATA / "dev_tiny_state_dict.pt")]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        curve = []  # (seconds, frames, rss MB, peak MB)
        part, final = out / "long.json.part", out / "long.json"
        while process.poll() is None:
            sample = memory_mb(process.pid)
            if sample is not None:
                curve.append((time.perf_counter() - started, frames_written(part, final), *sample))
            time.sleep(args.interval_s)
        stderr = process.stderr.read()
        if process.returncode != 0:
            print(stderr, file=sys.stderr)
            return 1
    after_500 = [row for row in curve if row[1] >= 500]
    if not after_500:
        print("the run ended before frame 500 was sampled; use more --frames", file=sys.stderr)
        return 1
    peak_at_500, final_peak = after_500[0][3], curve[-1][3]
    growth = final_peak / peak_at_500
    print(f"# track, tiny model, {args.frames} frames {SIZE[0]}x{SIZE[1]}, {PEOPLE} people per frame, "
          f"{curve[-1][0]:.0f} s")
    print(f"{'frames':>7} {'RSS MB':>8} {'peak MB':>8}")
    step = max(1, len(curve) // 20)
    for seconds, frames, rss, peak in curve[::step] + [curve[-1]]:
        print(f"{frames:>7} {rss:>8.1f} {peak:>8.1f}")
    print(f"peak at frame >= 500: {peak_at_500:.1f} MB; final peak {final_peak:.1f} MB; growth {growth:.3f} "
          f"({'within' if growth <= 1.05 else 'OVER'} the 1.05 target)")
    if args.json:
        Path(args.json).write_text(json.dumps({"frames": args.frames, "curve": curve, "peak_at_500_mb": peak_at_500,
                                               "final_peak_mb": final_peak, "growth": growth}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
