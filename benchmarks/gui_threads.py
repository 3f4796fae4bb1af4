"""torch's CPU threads under the window: pose ms per frame with `gui`'s OMP_NUM_THREADS (cores - 1) and unset.

Run: .venv/bin/python benchmarks/gui_threads.py [--rounds 3] [--loops 4] [--json out.json]
     [pose/detector options of `main.py gui`; default: the tiny test HRNet, boxes from a file]

`gui` sets OMP_NUM_THREADS to every core but one unless the person set it
(`cli.gui.window_torch_threads`): torch's threads spin while they wait for
each other, and with the window's own threads (decoding, drawing, painting)
on the same cores they stalled each other (the issue saw 76-4179 ms per frame
against 77-115 ms for `track`). The thread count is fixed when torch loads,
so each setting runs in its own process: the window (offscreen) plays the
sample clip back and forth `--loops` times, as fast as the models allow,
and reports each frame's pose-stage milliseconds (the first 3 left out:
warm-up) and the steady fps. The two settings alternate, `--rounds` times,
so a change in the machine's load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.gui import window_torch_threads  # noqa: E402  (no torch: the child sets the threads first)

SETTINGS = ("gui", "unset")
WARM_UP_FRAMES = 3


def child(setting: str, loops: int, model_arguments: list[str]) -> dict:
    """One window run under `setting`, in this process (which must not have loaded torch yet)."""
    os.environ.pop("OMP_NUM_THREADS", None)
    if setting == "gui":
        os.environ["OMP_NUM_THREADS"] = str(window_torch_threads())
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch  # noqa: PLC0415 - after the thread count is set

    import gui_overhead as bench  # noqa: PLC0415 - its imports load the app
    from app.model_loader import build_models  # noqa: PLC0415 - Qt
    from cli.options import add_detector_arguments, add_pose_arguments  # noqa: PLC0415 - with the models

    parser = argparse.ArgumentParser()
    add_pose_arguments(parser)
    add_detector_arguments(parser)
    parser.set_defaults(pose_config=str(bench.TINY_CONFIG))
    args = parser.parse_args(model_arguments)
    if args.pose_config == str(bench.TINY_CONFIG) and args.pose_weights is None:
        args.pose_weights = str(bench.TINY_WEIGHTS)
    pose_ms: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        clip, frames = bench.write_looped_clip(Path(scratch), loops)
        if args.det_file is None and args.detector is None and args.gt_boxes is None:
            args.det_file = str(bench.write_detections(Path(scratch) / "detections.json", frames))
        models = build_models(args, lambda percent, step: None)
        fps = bench.run_app(str(clip), args, models, frames, pose_ms=pose_ms)
    return {"setting": setting, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "torch_threads": torch.get_num_threads(), "frames": len(pose_ms), "fps": fps,
            "pose_ms": pose_ms[WARM_UP_FRAMES:], "model": models.label, "device": models.device}


def summary(pose_ms: list[float]) -> dict:
    ordered = sorted(pose_ms)
    return {"median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "max": ordered[-1], "frames": len(ordered)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setting, alternating")
    parser.add_argument("--loops", type=int, default=4, help="times the clip is played back and forth (10 frames each)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    options, model_arguments = parser.parse_known_args()
    if options.child:
        print(json.dumps(child(options.child, options.loops, model_arguments)))
        return 0
    runs: dict[str, list[dict]] = {setting: [] for setting in SETTINGS}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for round_index in range(options.rounds):
        for setting in SETTINGS if round_index % 2 == 0 else SETTINGS[::-1]:
            completed = subprocess.run(
                [sys.executable, __file__, "--child", setting, "--loops", str(options.loops), *model_arguments],
                capture_output=True, text=True, env=env, timeout=1800)
            if completed.returncode != 0:
                print(f"{setting}: the run failed\n{completed.stderr[-2000:]}", file=sys.stderr)
                return 1
            run = json.loads(completed.stdout.strip().splitlines()[-1])
            runs[setting].append(run)
            numbers = summary(run["pose_ms"])
            print(f"round {round_index + 1} {setting:5s} OMP_NUM_THREADS={run['omp_num_threads']} "
                  f"(torch {run['torch_threads']} threads): pose ms/frame median {numbers['median']:.0f}, "
                  f"p90 {numbers['p90']:.0f}, max {numbers['max']:.0f}; {run['fps']:.2f} fps", flush=True)
    report = {setting: {**summary([ms for run in setting_runs for ms in run["pose_ms"]]),
                        "fps_median": statistics.median(run["fps"] for run in setting_runs),
                        "torch_threads": setting_runs[0]["torch_threads"]}
              for setting, setting_runs in runs.items()}
    first = runs[SETTINGS[0]][0]
    print(f"{first['model']} on {first['device']}, {os.cpu_count()} cores, all rounds:")
    for setting, numbers in report.items():
        print(f"  {setting:5s} torch {numbers['torch_threads']} threads: pose ms/frame median {numbers['median']:.0f}, "
              f"p90 {numbers['p90']:.0f}, max {numbers['max']:.0f} ({numbers['frames']} frames); "
              f"{numbers['fps_median']:.2f} fps")
    if options.json:
        Path(options.json).write_text(json.dumps({"summary": report, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
