"""Training speed: images per second of one HRNet training step (forward, JointsMSE loss, backward, Adam step).

    .venv/bin/python benchmarks/train_step.py                          # W32 256x192, batch 8, CPU or CUDA
    .venv/bin/python benchmarks/train_step.py --device cuda --batch 32 --amp --json train_step.json
    .venv/bin/python benchmarks/train_step.py --config tests/data/trained/synthetic_w16_64x48.yaml --batch 2 --steps 2

The step is the trainer's own (`pose.training.trainer.training_step`) on the
experiment's network with the official training init and optimiser
(TRAIN.OPTIMIZER, TRAIN.LR), target weights as LOSS.USE_TARGET_WEIGHT says.
Inputs and targets are random tensors of the experiment's sizes: the cost of a
step does not depend on their values, and data loading is not part of it (it
runs in worker processes during training). Each step is timed on its own after
the warm-up steps (CUDA synchronised); images/s is batch / median step time.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

logger = logging.getLogger(__name__)


def measure(args: argparse.Namespace) -> dict:
    import torch

    import pose
    from core.environment import resolve_device
    from pose.training.trainer import build_optimizer, seed_everything, training_step

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    if args.amp and device.type != "cuda":
        raise SystemExit("--amp needs a CUDA device")
    config = pose.load_config(args.config)
    seed_everything(0)
    model = pose.build_model(config)
    model.init_weights()
    model = model.to(device).train()
    optimizer = build_optimizer(model, config)
    scaler = torch.amp.GradScaler("cuda") if args.amp else None
    width, height = config.model.image_size
    heatmap_w, heatmap_h = config.model.heatmap_size
    joints = config.model.num_joints
    generator = torch.Generator().manual_seed(0)
    batch = {
        "input": torch.randn(args.batch, 3, height, width, generator=generator),
        "target": torch.rand(args.batch, joints, heatmap_h, heatmap_w, generator=generator),
        "target_weight": torch.ones(args.batch, joints, 1),
    }

    def step() -> float:
        start = time.perf_counter()
        loss = training_step(model, optimizer, batch, device, config.loss.use_target_weight, scaler)
        float(loss)  # waits for the device, as the trainer's loss logging does
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    for _ in range(args.warmup):
        step()
    times = [step() for _ in range(args.steps)]
    median = statistics.median(times)
    return {
        "config": str(args.config),
        "device": str(device),
        "amp": bool(args.amp),
        "batch": args.batch,
        "input_size": [int(width), int(height)],
        "warmup_steps": args.warmup,
        "steps": args.steps,
        "step_s": times,
        "median_step_s": median,
        "images_per_s": args.batch / median,
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="coco/w32_256x192", help="experiment config name or YAML (default coco/w32_256x192)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default cuda if available)")
    parser.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--amp", action="store_true", help="float16 autocast + GradScaler, as training on CUDA does")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--batch and --steps must be >= 1, --warmup >= 0")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = measure(args)
    print(f"# {result['config']} batch {result['batch']} on {result['device']} (amp {result['amp']}, "
          f"{result['cpu_threads']} CPU threads): {result['images_per_s']:.2f} images/s, "
          f"median step {1e3 * result['median_step_s']:.1f} ms over {result['steps']} steps")
    if args.json:
        from core.io import write_json_atomic

        write_json_atomic(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
