"""ONNX Runtime (fp32 with and without thread spinning, static int8) against OpenVINO on this CPU, in one run.

    .venv/bin/python benchmarks/onnx_backends.py --json onnx.json          # W32 256x192, batch 8
    .venv/bin/python benchmarks/onnx_backends.py --quick --json onnx.json  # the small trained model only

Speed: HRNet `--config` (default W32 256x192) with random weights whose
BatchNorm statistics are set from one batch of real crops (so activations
have a realistic scale; the cost does not depend on the values), crops/s of
one `--batch`-crop call (median of `--repeats` rounds, each backend once per
round so that the load of a shared machine hits all alike) for eager
torch fp32, ORT fp32 with spinning off (our default) and on, ORT static int8
(QDQ, per-channel, calibrated on the detector boxes of the COCO test images
and their mirror images), OpenVINO fp32, bf16
(on CPUs with AVX512-BF16/AMX) and OpenVINO on the int8 QDQ model. The
spinning rows also time a torch 3x3 convolution run right after each ORT
call: spinning ORT threads keep the cores busy after `run()` returns, which
the next stage of the pipeline (here: that convolution) pays for.

Agreement: the trained test model (tests/data/trained/synthetic_w16_64x48)
through `PoseEstimator` (flip test on) on the annotated people of the COCO
test images, each backend against eager fp32: mean keypoint displacement in
image px and the share of keypoints within 2 px.

Machines differ 2-3x from day to day and this one is shared: compare the
rows of one run (ratios), not runs.

OpenVINO is not a backend: on the 2-core AVX512-VNNI development CPU (heavily
shared) it tied ORT in fp32 (1.79 vs 1.78 crops/s, 12 rounds; 3.23 vs 2.92 in
another run) and lost in int8 (10.6 vs 13.1 crops/s); its bf16 was slower
than fp32. Adopt it only if a run here shows it ahead of ONNX Runtime.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

logger = logging.getLogger(__name__)

COCO = ROOT / "tests" / "data" / "coco_mini"
TRAINED_CONFIG = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.yaml"
TRAINED_WEIGHTS = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.pth"


def coco_images() -> list[Path]:
    return sorted(COCO.glob("*.jpg"))


def calibration_set(input_hw) -> np.ndarray:
    """int8 calibration crops: the COCO test images' detector boxes (their detection-results file, score >= 0.5)."""
    from detector.file_detector import FileDetector  # noqa: PLC0415
    from pose.backends.calibration import calibration_crops  # noqa: PLC0415

    detector = FileDetector(COCO / "test_coco_det_AP_H_56.json", score_threshold=0.5)
    return calibration_crops(coco_images(), input_hw, boxes_for=lambda frame: detector([frame])[0].boxes)


def coco_people() -> list[tuple[np.ndarray, np.ndarray]]:
    """(image BGR, (N, 4) xywh ground-truth boxes of its people with keypoints) for each COCO test image."""
    from core.io import read_image  # noqa: PLC0415

    annotations = json.loads((COCO / "test_coco.json").read_text())
    rows = []
    for image in annotations["images"]:
        boxes = [a["bbox"] for a in annotations["annotations"] if a["image_id"] == image["id"] and a["num_keypoints"] > 0]
        if boxes:
            rows.append((read_image(COCO / image["file_name"]), np.asarray(boxes, np.float64)))
    return rows


def realistic_random_model(config):
    """HRNet of `config` with PyTorch's default random weights and BatchNorm statistics of one batch of real crops."""
    import torch  # noqa: PLC0415

    import pose  # noqa: PLC0415
    from pose.backends.calibration import calibration_crops  # noqa: PLC0415

    experiment = pose.load_config(config)
    torch.manual_seed(0)
    model = pose.build_model(experiment)
    width, height = experiment.model.image_size
    crops = calibration_crops(coco_images(), (height, width))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(np.concatenate([crops, crops[:, :, :, ::-1]])))
    return model.eval(), (height, width)


class _Conv:
    """A 3x3 64->64 convolution on an (8, 64, 64, 48) channels_last batch: the work that follows an ORT call."""

    def __init__(self):
        import torch  # noqa: PLC0415

        self.torch = torch
        self.conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).eval().to(memory_format=torch.channels_last)
        self.batch = torch.randn(8, 64, 64, 48).contiguous(memory_format=torch.channels_last)
        self.flops = 2 * 8 * 64 * 48 * 64 * 64 * 9

    def __call__(self) -> float:
        with self.torch.inference_mode():
            started = time.perf_counter()
            self.conv(self.batch)
            return time.perf_counter() - started


class OpenVinoRuntime:
    """An ONNX pose model compiled by OpenVINO for the CPU (latency hint, physical cores)."""

    device = "cpu"

    def __init__(self, path: Path, precision: str = "f32", name: str = "openvino"):
        import openvino as ov  # noqa: PLC0415

        from pose.backends.onnx import physical_cores  # noqa: PLC0415

        core = ov.Core()
        self.name = name
        self.compiled = core.compile_model(str(path), "CPU", {
            "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": physical_cores(),
        })
        self.request = self.compiled.create_infer_request()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.request.infer({0: np.ascontiguousarray(batch, np.float32)})
        return self.request.get_output_tensor(0).data.copy()


def native_bf16() -> bool:
    """True when the CPU has bf16 dot products (elsewhere bf16 is emulated, slower than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def build_runtimes(model, input_hw, cache_dir: Path, max_batch: int, openvino: bool, int8: bool = True) -> dict:
    """name -> runtime (or the error string of one that could not be built), with each one's build seconds."""
    from pose.backends.onnx import build_onnx_model, onnx_runtime  # noqa: PLC0415
    from pose.runtime import TorchRuntime  # noqa: PLC0415

    runtimes, build_s = {"torch": TorchRuntime(model)}, {}
    common = dict(input_size=input_hw, max_batch=max_batch, weights_id="benchmark", cache_dir=cache_dir)
    started = time.perf_counter()
    runtimes["ort-fp32"] = onnx_runtime(model, precision="fp32", **common)
    build_s["ort-fp32"] = time.perf_counter() - started
    runtimes["ort-fp32-spin"] = onnx_runtime(model, precision="fp32", spinning=True, **common)
    if int8:
        started = time.perf_counter()
        runtimes["ort-int8"] = onnx_runtime(model, precision="int8", calibration=calibration_set(input_hw), **common)
        build_s["ort-int8"] = time.perf_counter() - started
    if openvino:
        fp32_path = build_onnx_model(model, input_size=input_hw, weights_id="benchmark", cache_dir=cache_dir)[0]
        wanted = [("openvino-fp32", fp32_path, "f32")]
        if int8:
            wanted.append(("openvino-int8", runtimes["ort-int8"].path, "f32"))
        if native_bf16():
            wanted.append(("openvino-bf16", fp32_path, "bf16"))
        for name, path, precision in wanted:
            started = time.perf_counter()
            try:
                runtimes[name] = OpenVinoRuntime(path, precision, name)
                build_s[name] = time.perf_counter() - started
            except Exception as error:  # noqa: BLE001  (a backend that cannot build is a row, not a crash)
                runtimes[name] = f"{type(error).__name__}: {error}"
    return {"runtimes": runtimes, "build_s": build_s}


def speed_rows(args) -> dict:
    import torch  # noqa: PLC0415

    model, input_hw = realistic_random_model(args.config)
    with tempfile.TemporaryDirectory() as cache:
        built = build_runtimes(model, input_hw, Path(cache), args.batch, not args.no_openvino, not args.fp32_only)
        runtimes = built["runtimes"]
        rng = np.random.default_rng(0)
        batch = rng.standard_normal((args.batch, 3, *input_hw), dtype=np.float32)
        conv = _Conv()
        working = {name: runtime for name, runtime in runtimes.items() if not isinstance(runtime, str)}
        for runtime in working.values():  # warm-up
            for _ in range(args.warmup):
                runtime(batch)
        # Rounds: every backend once per round, so that the load of a shared machine hits all alike.
        call_s = {name: [] for name in working}
        conv_gflops = {name: [] for name in working if name.startswith("ort-fp32") or name == "torch"}
        for round_index in range(args.repeats):
            for name, runtime in working.items():
                started = time.perf_counter()
                runtime(batch)
                call_s[name].append(time.perf_counter() - started)
                if name in conv_gflops:  # the next stage's work right after the call
                    conv_gflops[name].append(conv.flops / conv() / 1e9)
            logger.info("round %d of %d done", round_index + 1, args.repeats)
        rows = [{"backend": name, "error": runtime} for name, runtime in runtimes.items() if isinstance(runtime, str)]
        for name, times in call_s.items():
            row = {"backend": name, "batch": args.batch, "crops_per_s": args.batch / statistics.median(times),
                   "build_s": built["build_s"].get(name)}
            if name in conv_gflops:
                row["conv_after_gflops"] = statistics.median(conv_gflops[name])
            rows.append(row)
            logger.info("%s", row)
        eager = next(row["crops_per_s"] for row in rows if row["backend"] == "torch")
        for row in rows:
            if "crops_per_s" in row:
                row["vs_eager"] = row["crops_per_s"] / eager
    return {"config": str(args.config), "input_hw": list(input_hw), "torch_threads": torch.get_num_threads(),
            "rows": rows}


def keypoints_with(runtime, people) -> np.ndarray:
    """(K, J, 2) image px keypoints of every person of `people` through a `PoseEstimator` on `runtime`."""
    import pose  # noqa: PLC0415
    from core.skeletons import keypoint_set  # noqa: PLC0415
    from pose.codec import HeatmapCodec  # noqa: PLC0415
    from pose.estimator import PoseEstimator  # noqa: PLC0415

    experiment = pose.load_config(TRAINED_CONFIG)
    layout = keypoint_set(experiment.dataset.name, experiment.model.num_joints)
    estimator = PoseEstimator(runtime, HeatmapCodec.from_config(experiment, layout.flip_pairs), layout,
                              input_size=tuple(experiment.model.image_size), flip_test=True, batch_size=8)
    results = estimator.estimate_many([image for image, _ in people], [boxes for _, boxes in people], box_format="xywh")
    return np.concatenate([keypoints for keypoints, _ in results])


def agreement_rows(openvino: bool) -> list[dict]:
    import pose  # noqa: PLC0415

    experiment = pose.load_config(TRAINED_CONFIG)
    model = pose.build_model(experiment)
    pose.load_weights(model, TRAINED_WEIGHTS)
    width, height = experiment.model.image_size
    people = coco_people()
    with tempfile.TemporaryDirectory() as cache:
        runtimes = build_runtimes(model.eval(), (height, width), Path(cache), 16, openvino)["runtimes"]
        reference = keypoints_with(runtimes.pop("torch"), people)
        rows = []
        for name, runtime in runtimes.items():
            if isinstance(runtime, str):
                rows.append({"backend": name, "error": runtime})
                continue
            distance = np.linalg.norm(keypoints_with(runtime, people) - reference, axis=-1)
            rows.append({"backend": name, "mean_px": float(distance.mean()), "max_px": float(distance.max()),
                         "within_2px": float((distance <= 2.0).mean()), "keypoints": int(distance.size)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="coco/w32_256x192", help="speed rows: experiment config (default coco/w32_256x192)")
    parser.add_argument("--batch", type=int, default=8, help="crops per call (default 8, the CPU default)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-openvino", action="store_true", help="skip the OpenVINO rows")
    parser.add_argument("--fp32-only", action="store_true", help="speed rows without the int8 ones (more rounds in the time)")
    parser.add_argument("--quick", action="store_true", help="speed rows on the small trained model, 3 repeats")
    parser.add_argument("--json", metavar="OUT", help="write the report as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.config, args.repeats, args.warmup = TRAINED_CONFIG, 3, 1
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = {"speed": speed_rows(args), "agreement": agreement_rows(not args.no_openvino)}
    print(f"# {report['speed']['config']} batch {args.batch}, {report['speed']['torch_threads']} torch threads")
    print(f"{'backend':<15} {'crops/s':>8} {'x eager':>8} {'conv after':>11} {'build s':>8}")
    for row in report["speed"]["rows"]:
        if "error" in row:
            print(f"{row['backend']:<15} {row['error']}")
            continue
        conv = f"{row['conv_after_gflops']:.0f} GF/s" if "conv_after_gflops" in row else ""
        build = f"{row['build_s']:.1f}" if row.get("build_s") is not None else ""
        print(f"{row['backend']:<15} {row['crops_per_s']:>8.2f} {row['vs_eager']:>8.2f} {conv:>11} {build:>8}")
    print("# agreement with eager fp32: trained synthetic_w16_64x48, COCO test images, flip test, image px")
    for row in report["agreement"]:
        if "error" in row:
            print(f"{row['backend']:<15} {row['error']}")
        else:
            print(f"{row['backend']:<15} mean {row['mean_px']:.3f} px  max {row['max_px']:.2f} px  "
                  f"within 2 px {100 * row['within_2px']:.1f}% of {row['keypoints']}")
    if args.json:
        from core.io import write_json_atomic  # noqa: PLC0415

        write_json_atomic(args.json, report, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
