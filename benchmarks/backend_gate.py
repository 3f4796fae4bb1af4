"""Where to set `--backend auto`'s OKS gate: AP lost against OKS to eager fp32, for real backends and damaged copies.

    .venv/bin/python benchmarks/backend_gate.py --json gate.json --plot docs/backend_gate.png

The small HRNet trained on synthetic stick figures (tests/data/trained) on its
own validation set (128 figures, the seed it was validated on) and reference
people (32 other figures), so that both numbers are measured in the network's
distribution (evaluation.backend_accuracy). Rows:

- the real low-precision backends: ONNX Runtime fp32, static int8 (our recipe,
  calibrated on 32 further figures), eager bf16 (run here even where the CPU
  has no bf16 units: slow, but the arithmetic is the same);
- damaged copies, to see how far the gate must reach: int8 whose calibration
  ranges are shrunk (crops scaled by 0.5 .. 0.15 before calibrating, so
  activations saturate), and fp32 with Gaussian noise on every convolution's
  weights (`level` x the weight tensor's std, two seeds per level).

Prints a table, writes the rows as JSON and a scatter plot of AP lost (points,
0-100) against mean OKS to eager with the gate (`pose.backends.agreement.OKS_MIN`)
drawn in, and checks the gate's promise: every row that lost at most 0.5 AP
passes it, every row that lost 2 AP or more is below it. (Between the two, AP
differences under a point are within the sampling noise of 128 validation
figures: weight noise that cannot help moved eager's AP by up to +0.5.)
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.io import write_json_atomic  # noqa: E402
from evaluation.backend_accuracy import accuracy_rows, people_of, synthetic_sets  # noqa: E402
from pose.backends.agreement import OKS_MIN  # noqa: E402

TRAINED_CONFIG = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.yaml"
TRAINED_WEIGHTS = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.pth"
CALIBRATION_SHRINK = (0.5, 0.35, 0.25, 0.2, 0.15)
WEIGHT_NOISE = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
NOISE_SEEDS = (0, 1)
QUICK_NOISE = (0.05, 0.1, 0.3)  # --quick: clear of the gate on both sides


def noisy_copy(model, level: float, seed: int):
    """A copy of `model` with N(0, (level * std)^2) noise added to each convolution weight tensor."""
    import torch  # noqa: PLC0415 - loads torch

    from pose.backends import clone_network  # noqa: PLC0415 - loads torch

    noisy = clone_network(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in noisy.parameters():
            if parameter.ndim == 4:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std() * level)
    return noisy


def runtimes_to_compare(estimator, calibration: np.ndarray, cache_dir: Path, quick: bool) -> dict:
    """{row name: runtime}: the real backends, then the damaged copies."""
    from pose.backends import clone_network, make_runtime  # noqa: PLC0415 - loads torch
    from pose.backends.onnx import OnnxRuntimeSession, model_path, quantize_int8  # noqa: PLC0415 - onnxruntime
    from pose.runtime import TorchRuntime  # noqa: PLC0415 - loads torch

    model = estimator.runtime.model
    size = estimator.input_size
    build = dict(input_size=size, weights_id="trained-test-network", cache_dir=cache_dir)
    runtimes = {
        "onnxruntime": make_runtime("onnxruntime", model, **build),
        "onnxruntime-int8": make_runtime("onnxruntime-int8", model, calibration=calibration, **build),
        "bf16": TorchRuntime(clone_network(model), dtype="bfloat16", channels_last=True),
    }
    fp32 = model_path(cache_dir, "trained-test-network", (size[1], size[0]), "fp32")
    for shrink in CALIBRATION_SHRINK[-2:] if quick else CALIBRATION_SHRINK:
        path = quantize_int8(fp32, cache_dir / f"int8-shrunk-{shrink}.onnx", calibration * shrink)
        runtimes[f"int8, ranges x{shrink}"] = OnnxRuntimeSession(path, name=f"int8 x{shrink}")
    for level in QUICK_NOISE if quick else WEIGHT_NOISE:
        for seed in NOISE_SEEDS[:1] if quick else NOISE_SEEDS:
            runtimes[f"fp32, weight noise {level} seed {seed}"] = TorchRuntime(noisy_copy(model, level, seed))
    return runtimes


def run(args) -> dict:
    from pose.estimator import PoseEstimator  # noqa: PLC0415 - loads torch

    with tempfile.TemporaryDirectory(prefix="hrtrack-gate-") as scratch:
        scratch = Path(scratch)
        sets = synthetic_sets(scratch / "data")
        estimator = PoseEstimator.from_config(TRAINED_CONFIG, weights=TRAINED_WEIGHTS, backend="torch",
                                              batch_size=32, flip_test=True)
        people = people_of(sets.reference, estimator.input_size)
        calibration = people_of(sets.calibration, estimator.input_size).crops
        calibration = np.concatenate([calibration, np.ascontiguousarray(calibration[..., ::-1])])
        runtimes = runtimes_to_compare(estimator, calibration, scratch, args.quick)
        rows = accuracy_rows(estimator, runtimes, people, sets.validation)
    return summarise({"network": str(TRAINED_WEIGHTS.relative_to(ROOT)), "oks_min": OKS_MIN, "rows": rows,
                      "reference_people": len(people)})


def summarise(report: dict) -> dict:
    """Add the gate's promise to `report`: rows losing <= 0.5 AP pass, rows losing >= 2 AP are rejected."""
    rows, gate = report["rows"], report["oks_min"]
    small = [row["oks_mean"] for row in rows if row["ap_loss"] <= 0.5]
    large = [row["oks_mean"] for row in rows if row["ap_loss"] >= 2.0]
    return {**report, "min_oks_losing_at_most_half_ap": min(small),
            "max_oks_losing_2ap_or_more": max(large, default=None),
            "gate_holds": min(small) >= gate and all(oks < gate for oks in large)}


def plot(report: dict, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only for the picture

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415 - after the Agg backend is chosen

    figure, axes = pyplot.subplots(figsize=(7, 4.5), dpi=110)
    groups = {"backends": [], "int8, shrunk ranges": [], "fp32 + weight noise": []}
    for row in report["rows"][1:]:
        key = ("int8, shrunk ranges" if row["backend"].startswith("int8,")
               else "fp32 + weight noise" if row["backend"].startswith("fp32,") else "backends")
        groups[key].append(row)
    for (name, rows), marker in zip(groups.items(), ("o", "s", "^")):
        axes.scatter([r["oks_mean"] for r in rows], [r["ap_loss"] for r in rows], marker=marker, label=name, s=36)
        if name == "backends":
            for row in rows:
                axes.annotate(row["backend"], (row["oks_mean"], row["ap_loss"]), textcoords="offset points",
                              xytext=(4, 4), fontsize=8)
    axes.axvline(report["oks_min"], color="black", linestyle="--", linewidth=1, label=f"gate: OKS >= {report['oks_min']}")
    axes.axhline(0.5, color="green", linestyle=":", linewidth=1, label="0.5 AP lost")
    axes.axhline(2.0, color="red", linestyle=":", linewidth=1, label="2 AP lost")
    axes.set_xlabel("mean OKS to eager fp32 on the reference people (what auto measures at start)")
    axes.set_ylabel("COCO AP lost vs eager fp32 (points)")
    axes.set_title("Backend gate: trained test HRNet on its own validation set")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="OUT", help="write the rows as JSON")
    parser.add_argument("--plot", metavar="PNG", help="write the scatter plot")
    parser.add_argument("--quick", action="store_true", help="fewer damaged copies (the test's smoke run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = run(args)
    print(f"{'row':<36} {'AP':>6} {'lost':>6} {'OKS':>7} {'min OKS':>7} {'mean px':>7}  gate")
    for row in report["rows"]:
        verdict = "pass" if row["oks_mean"] >= report["oks_min"] else "reject"
        print(f"{row['backend']:<36} {row['ap']:>6.2f} {row['ap_loss']:>+6.2f} {row['oks_mean']:>7.4f} "
              f"{row['oks_min']:>7.3f} {row['mean_px']:>7.2f}  {verdict}")
    print(f"gate OKS >= {report['oks_min']}: rows losing <= 0.5 AP had OKS >= "
          f"{report['min_oks_losing_at_most_half_ap']:.4f} (pass); rows losing >= 2 AP had OKS <= "
          f"{report['max_oks_losing_2ap_or_more']:.4f} (rejected); holds: {report['gate_holds']}")
    if args.json:
        write_json_atomic(args.json, report, indent=1)
    if args.plot:
        plot(report, Path(args.plot))
    return 0 if report["gate_holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
