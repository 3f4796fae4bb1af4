"""GPU check: pose crops/s of every precision and backend by batch, their agreement with fp32, and end-to-end fps, in one JSON.

    python benchmarks/gpu_check.py --json gpu_check.json          # on a CUDA machine with the project installed
    python benchmarks/gpu_check.py --dry-run --json /tmp/dry.json  # anywhere: tiny models, CPU, seconds
    python benchmarks/gpu_check.py --backends torch fp16 --json out.json   # some rows only

Measures, in one run:

1. speed: HRNet-W32 256x192 crops/s at batch 1, 8 and 64 through the
   project's runtimes (`pose.backends.make_runtime`, numpy in and out, so the
   host-device copies the pipeline pays are included), one runtime per row
   built for the largest batch:
   - `torch`: eager fp32 with TF32 off (the exact reference setting),
   - `fp16`, `bf16`: eager half precision, channels_last,
   - `torch-compile`, `torch-compile-bf16`: AOTInductor packages, one per
     batch bucket (1, 4, 16, 64 on CUDA; `build_s` is their compile time,
     or their load time when `--cache-dir` already has them),
   - `onnxruntime-int8:tensorrt`, `onnxruntime-int8:cuda`: the project's
     static int8 ONNX recipe (QDQ, calibrated on the reference crops) with
     symmetric int8 activations, as TensorRT needs them
     (`symmetric_int8_model`), on ONNX Runtime's TensorRT or CUDA execution
     provider. They need onnxruntime-gpu (and TensorRT for the first); where
     a provider is not installed, or fails to start, the row says so and the
     other rows go on. On the CUDA provider QDQ int8 runs as fp32 with
     (de)quantise steps: the TensorRT row is the real int8 one. Symmetric
     activations cost accuracy: on the trained test network's reference
     people (CPU provider, same calibration crops) OKS 0.882 to fp32 and
     2.16 px mean displacement, against 0.942 and 0.81 px for the CPU's
     uint8 recipe (percentile or entropy ranges did no better); the
     agreement rows show what TensorRT makes of it.
   Speed uses seeded random weights with BatchNorm statistics from real crops
   (`common.realistic_model`): cost does not depend on the weight values.
2. agreement with eager fp32, per row: the small HRNet trained on stick
   figures (tests/data/trained) on the reference people (random weights give
   chaotic keypoints), built the same way on the same device: the largest
   absolute heatmap difference, the OKS to eager's keypoints (mean and
   worst person: the measure `auto`'s gate uses) and the keypoint
   displacement (mean px, share within 2 px, network input px;
   `pose.backends.agreement`).
3. end-to-end `track` pipeline fps on synthetic 1280x720 frames with 1, 8 and
   16 people: the accurate detector (fasterrcnn_resnet50_fpn_v2) runs on every
   frame for its real cost, while the pose stage gets exactly that many boxes
   (random weights find no real people), the W32 estimator with the flip test,
   `tracker.PoseTracker`, no sinks.

The JSON is rewritten after every row, so a run cut short keeps what it
measured. A row that cannot run says why (`skipped`) instead of measuring.
A first run builds a lot: 4 W32 packages per torch-compile precision, one
small one each for agreement, the int8 models and TensorRT's engines (minutes
each); they go to the project's cache (`--cache-dir`), so a second run loads
them in seconds. Where time is short, run `--backends` groups in turn.

`--dry-run` runs the same code on the CPU with the tiny test model, small
batches, a small frame and SSDlite, so that the script is exercised by the
tests and does not rot before a GPU is at hand; its speeds mean nothing
(its agreement rows are real: the trained network, on the CPU).
Rows that need CUDA are skipped with the reason, torch-compile too (its
compiles take minutes on a CPU; tests/test_backends.py checks it against
eager), and the int8 ONNX path runs on ONNX Runtime's CPU provider instead.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))  # after ROOT: benchmarks/pipeline.py must not hide the package

from common import realistic_model  # noqa: E402

import pose  # noqa: E402
from core.types import Detections, Frame  # noqa: E402
from pipeline.models import default_batch_size  # noqa: E402
from pipeline.pipeline import Pipeline  # noqa: E402
from pose.backends import BackendUnavailable, make_runtime  # noqa: E402
from pose.backends.agreement import agreement, keypoints_from_heatmaps, reference_crops, reference_people  # noqa: E402
from pose.backends.identity import default_cache_dir, weights_id  # noqa: E402
from pose.estimator import PoseEstimator  # noqa: E402
from pose.runtime import disable_tf32  # noqa: E402
from tracker import PoseTracker  # noqa: E402

TINY_CONFIG = ROOT / "tests" / "data" / "hrnet_reference" / "dev_tiny.yaml"
TRAINED_CONFIG = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.yaml"
TRAINED_WEIGHTS = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.pth"
# ONNX Runtime's name of each provider a row can ask for, and the ones to fall back on, in order.
ORT_PROVIDERS = {
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "cpu": ("CPUExecutionProvider",),
}
# The rows a run can measure: `pose.backends` names, and int8 ONNX on a provider (the CPU's: the dry run's stand-in).
ROWS = ("torch", "fp16", "bf16", "torch-compile", "torch-compile-bf16",
        "onnxruntime-int8:tensorrt", "onnxruntime-int8:cuda", "onnxruntime-int8:cpu")


def plan(dry_run: bool) -> dict:
    """What to measure: the real plan, or a seconds-long CPU rehearsal of it."""
    if dry_run:
        return {"device": "cpu", "config": str(TINY_CONFIG), "batches": [1, 2], "repeats": 2, "warmup": 1,
                "backends": list(ROWS),
                "detector": "ssdlite320_mobilenet_v3_large", "frame_size": (160, 90), "people": [1, 2],
                "frames": 3}
    return {"device": "cuda", "config": "coco/w32_256x192", "batches": [1, 8, 64], "repeats": 20, "warmup": 3,
            "backends": [row for row in ROWS if row != "onnxruntime-int8:cpu"],
            "detector": "fasterrcnn_resnet50_fpn_v2", "frame_size": (1280, 720), "people": [1, 8, 16],
            "frames": 40}


def _synchronize(device: str) -> None:
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _seconds_per_call(function, device: str, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        function()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        _synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def refusal(row: str, settings: dict) -> str | None:
    """Why `row` is not measured in this run (None: it is), decided before anything is built."""
    backend, _, provider = row.partition(":")
    if backend.startswith("torch-compile") and settings["dry_run"]:
        return ("dry run: AOTInductor compiles take minutes on a CPU "
                "(tests/test_backends.py checks torch-compile against eager)")
    if provider:
        try:
            import onnxruntime  # noqa: PLC0415  (optional in a GPU environment; heavy)
        except ModuleNotFoundError:
            return "onnxruntime is not installed"
        wanted = ORT_PROVIDERS[provider][0]
        available = onnxruntime.get_available_providers()
        if wanted not in available:
            return (f"{wanted} is not installed (onnxruntime-gpu{' and TensorRT' if provider == 'tensorrt' else ''} "
                    f"would add it; this onnxruntime {onnxruntime.__version__} has {', '.join(available)})")
        if provider != "cpu" and not settings["device"].startswith("cuda"):
            return f"{wanted} needs a CUDA device (this run is on {settings['device']})"
    return None


def ort_provider_options(provider: str, max_batch: int, input_size: tuple[int, int], cache_dir: Path) -> list:
    """The `providers` list of an ONNX Runtime session for `provider` (a key of ORT_PROVIDERS).

    TensorRT: int8 on (the model's QDQ nodes give the ranges: no calibration
    table), one optimisation profile for 1..max_batch crops of input_size
    (w, h), and its engines cached beside the ONNX files (building one takes
    minutes).
    """
    from pose.backends.onnx import INPUT_NAME  # noqa: PLC0415 - onnxruntime: heavy

    names = ORT_PROVIDERS[provider]
    if provider == "tensorrt":
        width, height = input_size
        shape = lambda batch: f"{INPUT_NAME}:{batch}x3x{height}x{width}"  # noqa: E731
        engines = cache_dir / "tensorrt-engines"
        engines.mkdir(parents=True, exist_ok=True)
        options = {"device_id": 0, "trt_int8_enable": True, "trt_engine_cache_enable": True,
                   "trt_engine_cache_path": str(engines), "trt_profile_min_shapes": shape(1),
                   "trt_profile_opt_shapes": shape(max_batch), "trt_profile_max_shapes": shape(max_batch)}
        return [(names[0], options), *names[1:]]
    if provider == "cuda":
        return [(names[0], {"device_id": 0}), *names[1:]]
    return list(names)


def symmetric_int8_model(model, input_size: tuple[int, int], weights_key: str, cache_dir: Path,
                         calibration: np.ndarray) -> tuple[Path, float]:
    """(the cached int8 ONNX model TensorRT can run, seconds spent building it: 0.0 on a cache hit).

    The project's int8 recipe (`pose.backends.onnx.quantize_int8`: QDQ, per-channel
    weights, first and last convolutions in fp32, min/max ranges over
    `calibration`) with int8 activations symmetric around zero instead of
    uint8 ones, because TensorRT takes only zero-point-0 int8. All int8 rows
    run this one model, the dry run's CPU row included, so the rehearsal
    builds what the GPU rows run. input_size: (w, h).
    """
    from onnxruntime.quantization import QuantType  # noqa: PLC0415 - onnxruntime: heavy

    from pose.backends.onnx import build_onnx_model, model_path, quantize_int8  # noqa: PLC0415 - onnxruntime: heavy

    height_width = (input_size[1], input_size[0])
    int8_path = model_path(cache_dir, weights_key, height_width, "int8", calibration)
    path = int8_path.with_name(f"{int8_path.stem}-symmetric{int8_path.suffix}")
    if path.is_file():
        return path, 0.0
    started = time.perf_counter()
    fp32_path, _ = build_onnx_model(model, input_size=height_width, weights_id=weights_key, cache_dir=cache_dir)
    quantize_int8(fp32_path, path, calibration, activation_type=QuantType.QInt8,
                  extra_options={"ActivationSymmetric": True})
    return path, time.perf_counter() - started


def build_runtime(row: str, model, experiment, *, device: str, max_batch: int, weights_key: str, cache_dir: Path,
                  calibration: np.ndarray):
    """The runtime of `row` for `model`; raises BackendUnavailable (or an ONNX Runtime error) when it cannot run."""
    input_size = tuple(experiment.model.image_size)  # (w, h)
    backend, _, provider = row.partition(":")
    if not provider:
        return make_runtime(backend, model, device=device, max_batch=max_batch, input_size=input_size,
                            weights_id=weights_key, cache_dir=cache_dir)
    from pose.backends.onnx import OnnxRuntimeSession  # noqa: PLC0415 - onnxruntime: heavy

    path, built_s = symmetric_int8_model(model, input_size, weights_key, cache_dir, calibration)
    providers = ort_provider_options(provider, max_batch, input_size, cache_dir)
    runtime = OnnxRuntimeSession(path, max_batch=max_batch, name=row, built_s=built_s, providers=providers)
    running = runtime.session.get_providers()
    if running[0] != ORT_PROVIDERS[provider][0]:
        raise BackendUnavailable(f"{ORT_PROVIDERS[provider][0]} did not start (the session fell back to "
                                 f"{', '.join(running)}; ONNX Runtime's log says why)")
    return runtime


def runtimes(settings: dict, model, experiment, **build) -> Iterator[tuple[str, object | None, float, str | None]]:
    """(row name, runtime, seconds to build or load it, None) per row of the plan, or (name, None, seconds, why not).

    build: `build_runtime`'s keywords.
    """
    for name in settings["backends"]:
        if reason := refusal(name, settings):
            yield name, None, 0.0, reason
            continue
        started = time.perf_counter()
        runtime, reason = None, None
        try:
            runtime = build_runtime(name, model, experiment, **build)
        except BackendUnavailable as error:
            reason = str(error)
        except Exception as error:  # noqa: BLE001 - an execution provider fails in many library-specific ways: the row says how
            reason = f"{type(error).__name__}: {error}"
        yield name, runtime, time.perf_counter() - started, reason


def speed_rows(settings: dict, cache_dir: Path) -> Iterator[dict]:
    """One row per (backend, batch) as it is measured: crops/s of the runtime alone, or one row saying why not."""
    experiment, model, crops = realistic_model(settings["config"])
    build = dict(device=settings["device"], max_batch=max(settings["batches"]),
                 weights_key=weights_id(model, experiment), cache_dir=cache_dir, calibration=crops)
    for name, runtime, build_s, reason in runtimes(settings, model, experiment, **build):
        if runtime is None:
            yield {"backend": name, "skipped": reason, "build_s": build_s}
            continue
        for batch in settings["batches"]:
            inputs = np.ascontiguousarray(np.resize(crops, (batch, *crops.shape[1:])), np.float32)
            seconds = _seconds_per_call(lambda: runtime(inputs), settings["device"], settings["repeats"],
                                        settings["warmup"])
            yield {"backend": name, "batch": batch, "ms_per_call": 1000 * seconds, "crops_per_s": batch / seconds,
                   "build_s": build_s}


def agreement_rows(settings: dict, cache_dir: Path) -> Iterator[dict]:
    """Per backend, as it is measured: the trained small HRNet's heatmaps and keypoints of the reference people against eager fp32's."""
    experiment = pose.load_config(TRAINED_CONFIG)
    model = pose.build_model(experiment)
    pose.load_weights(model, TRAINED_WEIGHTS)
    model.eval()
    input_size = tuple(experiment.model.image_size)
    people = reference_people(input_size)
    # One crop per call: one torch-compile package (bucket 1) per backend instead of four. int8 calibrates
    # on the people and their mirror images, as the backend's default does.
    build = dict(device=settings["device"], max_batch=1, weights_key=weights_id(str(TRAINED_WEIGHTS), experiment),
                 cache_dir=cache_dir, calibration=reference_crops(input_size))
    reference = build_runtime("torch", model, experiment, **build)(people.crops)
    reference_xy = keypoints_from_heatmaps(reference, input_size)
    for name, runtime, _, reason in runtimes(settings, model, experiment, **build):
        if runtime is None:
            yield {"backend": name, "skipped": reason}
            continue
        heatmaps = runtime(people.crops)
        yield {"backend": name, "max_abs_heatmap": float(np.abs(heatmaps - reference).max()),
               **agreement(reference_xy, keypoints_from_heatmaps(heatmaps, input_size), people)}


class CountedDetector:
    """Runs a real detector for its cost, then returns exactly `people` boxes (random weights find nobody)."""

    def __init__(self, detector, people: int, width: int, height: int) -> None:
        self.detector = detector
        self.device = getattr(detector, "device", None)  # the pipeline's CPU policy looks at it
        rng = np.random.default_rng(people)
        box_h = rng.uniform(0.3, 0.8, people) * height
        box_w = box_h * rng.uniform(0.3, 0.5, people)
        x1 = rng.uniform(0, width - box_w)
        y1 = rng.uniform(0, height - box_h)
        self.boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1).astype(np.float32)

    def __call__(self, frames):
        self.detector(frames)
        return [Detections(self.boxes, np.full(len(self.boxes), 0.9, np.float32)) for _ in frames]


class SyntheticFrames:
    """`count` noise frames of one size, as a file source (no decoding cost)."""

    live = False

    def __init__(self, count: int, width: int, height: int) -> None:
        self.name, self.fps, self.last_read_s = f"synthetic {width}x{height}", 30.0, 0.0
        self._image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        self._count, self._next = count, 0

    def read(self, timeout_s=None):
        if self._next >= self._count:
            return None
        self._next += 1
        return Frame(self._next - 1, (self._next - 1) / self.fps, self._image, self.name)

    def close(self) -> None:
        self._count = 0


def end_to_end_rows(settings: dict) -> list[dict]:
    """Pipeline fps with the settings' detector on every frame and a fixed number of people."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    from detector.torchvision_detector import build_detector  # noqa: PLC0415 - loads torch

    device = settings["device"]
    torch.manual_seed(0)
    estimator = PoseEstimator.from_config(settings["config"], weights=None, device=device,
                                          batch_size=default_batch_size(device))
    detector = build_detector(settings["detector"], weights="random", device=device)
    width, height = settings["frame_size"]
    rows = []
    for people in settings["people"]:
        counted = CountedDetector(detector, people, width, height)
        warm = Pipeline(SyntheticFrames(2, width, height), counted, estimator, PoseTracker())
        list(warm.run())
        pipeline = Pipeline(SyntheticFrames(settings["frames"], width, height), counted, estimator, PoseTracker())
        started = time.perf_counter()
        results = list(pipeline.run())
        _synchronize(device)
        seconds = time.perf_counter() - started
        stage_ms = {name: 1000 * statistics.fmean(r.timings_s.get(name, 0.0) for r in results)
                    for name in ("detection", "pose", "tracking")}
        rows.append({"people": people, "frames": len(results), "fps": len(results) / seconds,
                     "stage_ms_per_frame": stage_ms})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny model on the CPU, seconds (for the tests)")
    parser.add_argument("--json", metavar="PATH", default="gpu_check.json", help="where the results go")
    parser.add_argument("--backends", nargs="+", choices=ROWS, metavar="ROW",
                        help=f"rows to measure (default: all of the plan's); choices: {', '.join(ROWS)}")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="compiled/exported models (default: the project's cache, so a rerun loads them; "
                             "a scratch folder with --dry-run)")
    args = parser.parse_args(argv)
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    settings = {**plan(args.dry_run), "dry_run": args.dry_run}
    if args.backends:
        settings["backends"] = list(args.backends)
    if settings["device"] == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run to rehearse on the CPU", file=sys.stderr)
        return 2
    disable_tf32()
    started = time.perf_counter()
    report = {
        "dry_run": args.dry_run,
        "device": torch.cuda.get_device_name(0) if settings["device"] == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "pose": [], "agreement": [], "end_to_end": [],
    }
    save = lambda: Path(args.json).write_text(json.dumps(report, indent=1))  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as scratch:
        cache_dir = Path(args.cache_dir or (scratch if args.dry_run else default_cache_dir())).expanduser()
        for section, rows in (("pose", speed_rows(settings, cache_dir)), ("agreement", agreement_rows(settings, cache_dir))):
            for row in rows:
                report[section].append(row)
                save()
    report["end_to_end"] = end_to_end_rows(settings)
    report["seconds"] = time.perf_counter() - started
    save()
    print(f"# {report['device']}, torch {report['torch']}{' (dry run: numbers mean nothing)' if args.dry_run else ''}")
    agreement_by_backend = {row["backend"]: row for row in report["agreement"] if "skipped" not in row}
    print(f"{'backend':<26} {'batch':>5} {'crops/s':>9} {'max |dh|':>9} {'OKS':>6} {'mean px':>8}")
    for row in report["pose"]:
        if "skipped" in row:
            print(f"{row['backend']:<26} {'-':>5} skipped: {row['skipped']}")
            continue
        agreed = agreement_by_backend.get(row["backend"])
        accuracy = (f"{agreed['max_abs_heatmap']:>9.2g} {agreed['oks_mean']:>6.3f} {agreed['mean_px']:>8.2f}"
                    if agreed else "")
        print(f"{row['backend']:<26} {row['batch']:>5} {row['crops_per_s']:>9.1f} {accuracy}")
    print(f"end to end, {settings['frame_size'][0]}x{settings['frame_size'][1]}, detector {settings['detector']}:")
    for row in report["end_to_end"]:
        print(f"  {row['people']:>3} people: {row['fps']:.2f} fps")
    print(f"{report['seconds']:.0f} s; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
