"""Pose backends side by side: crops/s, share of the machine's convolution ceiling, start times, AP and OKS.

    .venv/bin/python benchmarks/backends.py --json backends.json                 # W32 256x192, every backend
    .venv/bin/python benchmarks/backends.py --backends torch torch-compile bf16 --batches 8 --json out.json
    .venv/bin/python benchmarks/backends.py --accuracy-config CFG --accuracy-weights W.pth \
        --val-ann person_keypoints_val.json --val-images val/                  # accuracy of your model, your data

In one run:

- the ceiling: GFLOP/s of a 3x3 64->64 NHWC convolution (oneDNN), measured
  before and after the backends (machines differ 2-3x from day to day, so
  every speed is also given as a fraction of this run's ceiling);
- speed, per backend and batch size: network crops/s for calls of `batch`
  crops (no flip test, the runtime alone), with an artifact built for that
  batch, timed round-robin across the backends (the median of `--repeats`
  rounds); the ratio to eager fp32 (`torch`) at the same batch; the fraction
  of the ceiling (crops/s x GFLOP per crop / ceiling GFLOP/s); first start
  (build or export + compile into an empty cache, then load) and second start
  (the same call again, finding its artifact in the cache; same process);
- accuracy, per backend, measured as the task measures it
  (evaluation.backend_accuracy), with a network that has learned something on
  data from its own distribution: by default the small HRNet trained on
  synthetic stick figures (tests/data/trained) on its own validation set (128
  figures) and 32 other figures as reference people; or the network and
  COCO-format set you name (then the reference people are the project's
  default ones). Per backend: COCO AP (flip test, ground-truth boxes) and the AP
  lost against eager fp32; mean and min OKS of its keypoints to eager's on the
  reference people (the `auto` gate's number, `pose.backends.agreement.OKS_MIN`);
  mean displacement (px) and share within 2 px. int8 is calibrated on person
  crops: 32 further figures, or the default reference people for your set.

Speed uses random weights whose BatchNorm statistics are set from one batch of
real crops (the COCO test people), so that activations have a trained
network's scale (with PyTorch's default statistics they grow through the
stages, which changes nothing for fp32 but flatters or hurts low precisions).
The cost of fp32 does not depend on the weight values.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))  # after ROOT: benchmarks/pipeline.py must not hide the package

from common import conv_ceiling_gflops, realistic_model  # noqa: E402

logger = logging.getLogger(__name__)

TRAINED_CONFIG = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.yaml"
TRAINED_WEIGHTS = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.pth"
SPEED_BACKENDS = ("torch", "torch-compile", "torch-compile-bf16", "bf16", "fp16", "onnxruntime", "onnxruntime-int8")


def gflop_per_crop(model, input_size: tuple[int, int]) -> float:
    """Floating-point operations of one crop through `model` (multiply-adds count 2), in GFLOP."""
    import torch  # noqa: PLC0415
    from torch.utils.flop_counter import FlopCounterMode  # noqa: PLC0415

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, input_size[1], input_size[0]))
    return counter.get_total_flops() / 1e9


def speed_rows(model, args, crops: np.ndarray, weights_key: str, cache_dir: Path) -> list[dict]:
    """One row per (backend, batch): crops/s and start times, or why the backend cannot run here.

    Every runtime is built first; then the calls are timed round-robin (one
    call of each backend per round, `repeats` rounds, the median kept), so that
    the load of a shared machine, which drifts over minutes, weighs on every
    backend alike and the ratios stay meaningful.
    """
    from pose.backends import BackendUnavailable, make_runtime  # noqa: PLC0415

    rows, runtimes = [], []
    for backend in args.backends:
        batches = args.compiled_batches if backend.startswith("torch-compile") and args.compiled_batches else args.batches
        for batch_size in batches:
            row = {"backend": backend, "batch": batch_size}
            build = dict(device="cpu", max_batch=batch_size, input_size=args.input_size, weights_id=weights_key,
                         cache_dir=cache_dir, calibration=crops)
            try:
                started = time.perf_counter()
                make_runtime(backend, model, **build)
                row["first_start_s"] = time.perf_counter() - started
                started = time.perf_counter()
                runtime = make_runtime(backend, model, **build)
                row["second_start_s"] = time.perf_counter() - started
            except BackendUnavailable as error:
                rows.append({**row, "available": False, "reason": str(error)})
                logger.info("%s: %s", backend, error)
                break
            logger.info("%s batch %d: first start %.1f s, second %.2f s", backend, batch_size,
                        row["first_start_s"], row["second_start_s"])
            rows.append({**row, "available": True})
            batch = np.ascontiguousarray(np.resize(crops, (batch_size, *crops.shape[1:])), np.float32)
            runtimes.append((rows[-1], runtime, batch))
    for _ in range(args.warmup):
        for _, runtime, batch in runtimes:
            runtime(batch)
    times = {id(row): [] for row, _, _ in runtimes}
    for _ in range(args.repeats):
        for row, runtime, batch in runtimes:
            started = time.perf_counter()
            runtime(batch)
            times[id(row)].append(time.perf_counter() - started)
    for row, _, batch in runtimes:
        row["crops_per_s"] = len(batch) / statistics.median(times[id(row)])
        logger.info("%s batch %d: %.2f crops/s", row["backend"], row["batch"], row["crops_per_s"])
    return rows


def accuracy_report(args, cache_dir: Path) -> dict:
    """AP and OKS to eager fp32 per backend (see the module docstring); unavailable backends say why."""
    import numpy as np  # noqa: PLC0415

    from evaluation.backend_accuracy import ValidationSet, accuracy_rows, people_of, synthetic_sets  # noqa: PLC0415
    from pose.backends import BackendUnavailable, make_runtime  # noqa: PLC0415
    from pose.backends.agreement import reference_people  # noqa: PLC0415
    from pose.backends.identity import weights_id  # noqa: PLC0415
    from pose.estimator import PoseEstimator  # noqa: PLC0415

    estimator = PoseEstimator.from_config(args.accuracy_config, weights=args.accuracy_weights, backend="torch",
                                          batch_size=32, flip_test=True)
    size = estimator.input_size
    if args.val_ann:
        dataset, people, calibration = ValidationSet(Path(args.val_ann), Path(args.val_images)), reference_people(size), None
    else:
        sets = synthetic_sets(cache_dir / "synthetic")
        dataset, people = sets.validation, people_of(sets.reference, size)
        crops = people_of(sets.calibration, size).crops
        calibration = np.concatenate([crops, np.ascontiguousarray(crops[..., ::-1])])
    network_id = weights_id(args.accuracy_weights, args.accuracy_config)
    runtimes, unavailable = {}, []
    for backend in args.backends:
        if backend == "torch":
            continue
        try:
            runtimes[backend] = make_runtime(backend, estimator.runtime.model, device="cpu", max_batch=64,
                                             input_size=size, weights_id=network_id, cache_dir=cache_dir,
                                             calibration=calibration)
        except BackendUnavailable as error:
            unavailable.append({"backend": backend, "available": False, "reason": str(error)})
    rows = [{**row, "available": True} for row in accuracy_rows(estimator, runtimes, people, dataset)]
    return {"config": str(args.accuracy_config), "weights": str(args.accuracy_weights),
            "validation": str(dataset.annotation) if args.val_ann else "synthetic stick figures (128, seed 2)",
            "reference_people": people.source if args.val_ann else "synthetic stick figures (32, seed 3)",
            "rows": rows + unavailable}


def run(args) -> dict:
    import torch  # noqa: PLC0415

    from pose.backends.identity import weights_id  # noqa: PLC0415

    if args.threads:
        torch.set_num_threads(args.threads)
    experiment, model, crops = realistic_model(args.config)
    args.input_size = tuple(experiment.model.image_size)
    gflop = gflop_per_crop(model, args.input_size)
    ceiling_before = conv_ceiling_gflops()
    with tempfile.TemporaryDirectory(prefix="hrtrack-backends-") as scratch:
        cache_dir = Path(args.cache_dir) if args.cache_dir else Path(scratch)
        speed = speed_rows(model, args, crops, weights_id(model, experiment), cache_dir)
        ceiling_after = conv_ceiling_gflops()
        accuracy = accuracy_report(args, cache_dir) if not args.no_accuracy else {"rows": []}
    ceiling = (ceiling_before + ceiling_after) / 2
    eager = {row["batch"]: row["crops_per_s"] for row in speed if row["backend"] == "torch" and row["available"]}
    for row in speed:
        if row["available"]:
            row["fraction_of_ceiling"] = row["crops_per_s"] * gflop / ceiling
            if row["batch"] in eager:
                row["ratio_to_eager"] = row["crops_per_s"] / eager[row["batch"]]
    return {
        "config": str(args.config), "input_size": list(args.input_size), "gflop_per_crop": gflop,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "ceiling_gflops": {"before": ceiling_before, "after": ceiling_after, "mean": ceiling},
        "speed": speed,
        "accuracy": accuracy,
    }


def print_report(report: dict) -> None:
    ceiling = report["ceiling_gflops"]
    print(f"# {report['config']} {report['input_size']}: {report['gflop_per_crop']:.2f} GFLOP/crop; conv ceiling "
          f"{ceiling['before']:.0f} / {ceiling['after']:.0f} GFLOP/s (before/after), torch {report['torch']}, "
          f"{report['threads']} threads")
    accuracy = {row["backend"]: row for row in report["accuracy"]["rows"] if row["available"]}
    if accuracy:
        print(f"# AP: {report['accuracy']['weights']} on {report['accuracy']['validation']}; OKS to eager on "
              f"{report['accuracy']['reference_people']}")
    print(f"{'backend':<20} {'batch':>5} {'crops/s':>8} {'x eager':>8} {'ceiling':>8} {'1st s':>8} {'2nd s':>7} "
          f"{'AP':>6} {'AP lost':>7} {'OKS':>6} {'mean px':>8} {'<=2px':>6}")
    for row in report["speed"]:
        if not row["available"]:
            print(f"{row['backend']:<20} {'':>5} unavailable: {row['reason']}")
            continue
        agree = accuracy.get(row["backend"], {})
        columns = [f"{agree[key]:{spec}}" if key in agree else "-" for key, spec in
                   (("ap", ".2f"), ("ap_loss", "+.2f"), ("oks_mean", ".4f"), ("mean_px", ".3f"))]
        within = f"{100 * agree['within_2px']:.1f}%" if "within_2px" in agree else "-"
        print(f"{row['backend']:<20} {row['batch']:>5} {row['crops_per_s']:>8.2f} {row.get('ratio_to_eager', 0):>8.2f} "
              f"{row['fraction_of_ceiling']:>8.2f} {row['first_start_s']:>8.1f} {row['second_start_s']:>7.2f} "
              f"{columns[0]:>6} {columns[1]:>7} {columns[2]:>6} {columns[3]:>8} {within:>6}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="coco/w32_256x192", help="network for the speed rows (default coco/w32_256x192)")
    parser.add_argument("--backends", nargs="+", default=list(SPEED_BACKENDS), metavar="NAME",
                        help=f"backends to measure (default all: {' '.join(SPEED_BACKENDS)})")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], metavar="N", help="crops per call (default 1 8)")
    parser.add_argument("--compiled-batches", type=int, nargs="+", default=None, metavar="N",
                        help="batches for the torch-compile backends, which compile once per batch size "
                        "(default: --batches)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--cache-dir", default=None,
                        help="artifact cache (default: a fresh temporary folder, so that first starts are real)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the AP and OKS columns")
    parser.add_argument("--accuracy-config", default=str(TRAINED_CONFIG),
                        help="network for the accuracy columns (default: the trained test network)")
    parser.add_argument("--accuracy-weights", default=str(TRAINED_WEIGHTS), help="its weights")
    parser.add_argument("--val-ann", default=None, metavar="JSON",
                        help="COCO-format keypoint annotations to score AP on (default: the trained test "
                        "network's synthetic validation set; give --accuracy-config/--accuracy-weights with it)")
    parser.add_argument("--val-images", default=None, metavar="DIR", help="the images of --val-ann")
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from pose.backends import check_backend  # noqa: PLC0415

    try:
        for backend in args.backends:
            check_backend(backend)
    except ValueError as error:
        parser.error(str(error))
    if bool(args.val_ann) != bool(args.val_images):
        parser.error("--val-ann and --val-images go together")
    report = run(args)
    print_report(report)
    if args.json:
        from core.io import write_json_atomic  # noqa: PLC0415

        write_json_atomic(args.json, report, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
