"""The HRNet pose network as an ONNX model run by ONNX Runtime on the CPU: fp32, or static int8.

    runtime = onnx_runtime(model, input_size=(256, 192), max_batch=8, weights_id=wid,
                           cache_dir=None, precision="fp32", calibration=None)
    heatmaps = runtime(batch)   # (N, 3, H, W) float32 -> (N, J, H/4, W/4) float32

- Export: `torch.onnx.export(dynamo=True)` (the exporter torch 2.14 maintains;
  the TorchScript one is deprecated) with a dynamic batch axis, opset
  `OPSET`. Matches eager to ~1e-7 on the trained test model.
- Static int8: QDQ format, per-channel int8 weights, uint8 activations whose
  ranges are calibrated (min/max) on crops from the images/videos the user
  names (`pose.backends.calibration`). It trades accuracy for speed. Dynamic
  int8 (ranges computed per call) measured 7x slower than fp32: not offered.
- Cache: one file per (weights id, input size, opset, precision, calibration
  set, library versions) under `cache_dir`, written atomically (`.part` +
  rename), so a second start loads it instead of exporting again.
- Session: `physical_cores()` intra-op threads, one inter-op thread,
  sequential execution, all graph optimisations, and no spinning: by
  default ORT's worker threads busy-wait after each call, which on a small
  CPU steals the cores from the rest of the pipeline (detector, decoding,
  the next torch call); `benchmarks/onnx_backends.py` measures both.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.io import atomic_output
from pose.backends.agreement import reference_crops
from pose.backends.calibration import calibration_crops, calibration_fingerprint
from pose.backends.progress import elapsed
from pose.weights import get_cache_dir

logger = logging.getLogger(__name__)

OPSET = 18
PRECISIONS = ("fp32", "int8")
INT8_RECIPE = 2  # in the cache key: bump when quantize_int8 changes what it writes (2: first/last conv in fp32)
INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"
# The example batch of the export: 2, because torch.export specialises sizes 0 and 1.
_EXPORT_BATCH = 2
CACHE_SUBDIR = "backends"


def physical_cores() -> int:
    """Cores (not hyper-threads) this process may run on: distinct (package, core id) pairs in /proc/cpuinfo.

    Falls back to the number of usable logical CPUs where /proc/cpuinfo says nothing.
    """
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores, processor, package = set(), None, "0"
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            processor, package = int(value), "0"
        elif key == "physical id":
            package = value
        elif key == "core id" and processor in usable:
            cores.add((package, value))
    return max(1, len(cores) or len(usable))


def _versions() -> dict:
    import onnxruntime  # noqa: PLC0415  (heavy; only when the ONNX backend is built)
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def model_path(cache_dir: str | os.PathLike | None, weights_id: str, input_size: tuple[int, int], precision: str,
               calibration: Sequence[str | os.PathLike] | np.ndarray | None = None) -> Path:
    """The cache file of one exported model; everything that shapes the file is in its name's digest."""
    height, width = int(input_size[0]), int(input_size[1])
    parts = {"weights": weights_id, "input_hw": [height, width], "opset": OPSET, "precision": precision,
             "versions": _versions()}
    if precision == "int8":
        parts["int8_recipe"] = INT8_RECIPE
        parts["calibration"] = (hashlib.sha256(np.ascontiguousarray(calibration)).hexdigest()
                                if isinstance(calibration, np.ndarray) else calibration_fingerprint(calibration or ()))
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    if cache_dir is None:
        cache_dir = get_cache_dir() / CACHE_SUBDIR
    return Path(cache_dir).expanduser() / f"hrnet-{height}x{width}-opset{OPSET}-{precision}-{digest}.onnx"


def export_onnx(model, path: str | os.PathLike, input_size: tuple[int, int]) -> Path:
    """Write `model` (torch HRNet, eval) as an fp32 ONNX file with a dynamic batch axis; atomic.

    input_size: (H, W) network input px. Returns the path.
    """
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    height, width = int(input_size[0]), int(input_size[1])
    model = model.eval().float().cpu()
    example = torch.zeros(_EXPORT_BATCH, 3, height, width)
    batch = torch.export.Dim("batch", min=1)
    # The exporter prints its progress to stdout and logs every optimiser pass at INFO: kept
    # out of commands whose stdout is their JSON result, and in the debug log.
    printed = io.StringIO()
    with elapsed("exporting the pose network to ONNX", "tens of seconds for HRNet-W32 on 2 cores"), \
            atomic_output(path) as part, contextlib.redirect_stdout(printed), _no_info_logs():
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},), opset_version=OPSET, verbose=False,
        )
        program.save(os.fspath(part))
    logger.debug("torch.onnx.export: %s", printed.getvalue())
    return Path(path)


@contextlib.contextmanager
def _no_info_logs():
    """INFO and DEBUG records dropped process-wide for the duration (the exporter's libraries log every pass)."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)


class _CropReader:
    """onnxruntime's CalibrationDataReader over (N, 3, H, W) crops, one crop per call."""

    def __init__(self, crops: np.ndarray):
        self._crops = crops
        self._next = 0

    def get_next(self) -> dict | None:
        if self._next >= len(self._crops):
            return None
        self._next += 1
        return {INPUT_NAME: self._crops[self._next - 1: self._next]}

    def rewind(self) -> None:
        self._next = 0


def quantize_int8(fp32_path: str | os.PathLike, path: str | os.PathLike, crops: np.ndarray, **options) -> Path:
    """Static int8 (QDQ, per-channel int8 weights, uint8 activations, min/max ranges over `crops`); atomic.

    The first convolution (it sees the image itself) and the last (it writes the
    heatmaps) stay fp32: on the trained test network that halved the keypoint
    displacement from fp32 (2.06 to 0.89 px mean, 81% to 90% within 2 px;
    percentile or entropy ranges instead of min/max gained less) for about 1% of
    the network's operations.

    crops: (N, 3, H, W) float32 normalised calibration inputs.
    """
    path = Path(path)
    prepared = path.with_name(path.name + ".prep.onnx")
    with elapsed(f"quantising to static int8 on {len(crops)} calibration crops", "a minute or two for HRNet-W32"):
        _quantize(fp32_path, path, prepared, crops, options)
    return path


def _quantize(fp32_path, path: Path, prepared: Path, crops: np.ndarray, options: dict) -> None:
    import onnx  # noqa: PLC0415  (heavy)
    from onnxruntime.quantization import (  # noqa: PLC0415  (heavy)
        CalibrationMethod, QuantFormat, QuantType, quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: PLC0415 (heavy)

    try:
        # ONNX shape inference + graph clean-up first, as onnxruntime advises before static quantisation
        # (its symbolic shape inference gives up on the dynamic batch of the resize ops).
        quant_pre_process(os.fspath(fp32_path), os.fspath(prepared), skip_symbolic_shape=True)
        convolutions = [node.name for node in onnx.load(os.fspath(prepared)).graph.node if node.op_type == "Conv"]
        with atomic_output(path) as part:
            quantize_static(
                os.fspath(prepared), os.fspath(part), _CropReader(np.ascontiguousarray(crops, np.float32)),
                **{"quant_format": QuantFormat.QDQ, "per_channel": True, "activation_type": QuantType.QUInt8,
                   "weight_type": QuantType.QInt8, "calibrate_method": CalibrationMethod.MinMax,
                   "nodes_to_exclude": [convolutions[0], convolutions[-1]], **options},
            )
    finally:
        prepared.unlink(missing_ok=True)


def session_options(threads: int | None = None, spinning: bool = False):
    """ORT session options: `threads` intra-op threads (None: physical cores), one inter-op, sequential, all optimisations."""
    import onnxruntime as ort  # noqa: PLC0415  (heavy)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    flag = "1" if spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", flag)
    options.add_session_config_entry("session.inter_op.allow_spinning", flag)
    return options


class OnnxRuntimeSession:
    """An ONNX pose model on ONNX Runtime's CPU provider, callable like every `pose.runtime.Runtime`.

    Args:
        path: the .onnx file (input "input" (N, 3, H, W), output "heatmaps").
        max_batch: largest batch per session call (larger inputs are split); None: no split.
        threads, spinning: see `session_options`.
        name: what logs and benchmarks call it.

    Attributes:
        device: always "cpu".
        built_s: seconds spent exporting/quantising for this runtime (0.0 when the cache had the file).
    """

    device = "cpu"

    def __init__(self, path: str | os.PathLike, max_batch: int | None = None, threads: int | None = None,
                 spinning: bool = False, name: str = "onnxruntime", built_s: float = 0.0):
        import onnxruntime as ort  # noqa: PLC0415  (heavy)

        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.path = Path(path)
        self.max_batch = max_batch
        self.name = name
        self.built_s = built_s
        self.session = ort.InferenceSession(os.fspath(self.path), sess_options=session_options(threads, spinning),
                                            providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 normalised crops -> (N, J, H/4, W/4) float32 heatmaps."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or len(batch) == 0:
            raise ValueError(f"runtime input must be a non-empty (N, 3, H, W) batch, got {batch.shape}")
        step = self.max_batch or len(batch)
        outputs = [self.session.run(None, {self._input: batch[start:start + step]})[0]
                   for start in range(0, len(batch), step)]
        return np.concatenate(outputs, axis=0) if len(outputs) > 1 else outputs[0]

    def __repr__(self) -> str:
        return f"OnnxRuntimeSession({self.name}, {self.path.name}, max_batch={self.max_batch})"


def default_calibration(input_size: tuple[int, int]) -> np.ndarray:
    """Calibration crops when the user names none: the reference images' people (`pose.backends.agreement`), mirrored too.

    input_size: (H, W). Raises ValueError when the reference images are not there (an installed copy).
    """
    try:
        crops = reference_crops((int(input_size[1]), int(input_size[0])))
    except FileNotFoundError as error:
        raise ValueError(f"static int8 needs calibration images or videos of the scenes it will run on ({error})") from error
    logger.warning("int8 calibrated on the %d crops of the project's reference people; calibrating on your "
                   "own scenes (--calibration PATH ...) keeps the keypoints closer to fp32", len(crops))
    return crops


def build_onnx_model(model, *, input_size: tuple[int, int], weights_id: str, cache_dir=None,
                     precision: str = "fp32", calibration: Sequence[str | os.PathLike] | np.ndarray | None = None,
                     color_rgb: bool = True) -> tuple[Path, float]:
    """The cached ONNX file for `model` at `precision`, exported (and quantised) when missing.

    Returns (path, seconds spent building it: 0.0 on a cache hit). Calibration
    file errors (missing, unreadable) raise before anything is exported.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"ONNX precision must be one of {PRECISIONS}, got {precision!r} "
                         "(dynamic int8 is not offered: it measured 7x slower than fp32)")
    if precision == "int8" and calibration is None:
        calibration = default_calibration(input_size)
    if precision == "int8" and len(calibration) == 0:
        raise ValueError("static int8 needs calibration images or videos of the scenes it will run on")
    path = model_path(cache_dir, weights_id, input_size, precision, calibration)
    if path.is_file():
        logger.info("ONNX model from the cache: %s", path)
        return path, 0.0
    started = time.perf_counter()
    crops = None
    if precision == "int8":
        crops = (calibration if isinstance(calibration, np.ndarray)
                 else calibration_crops(calibration, input_size, color_rgb=color_rgb))
    fp32_path = model_path(cache_dir, weights_id, input_size, "fp32")
    if not fp32_path.is_file():
        export_onnx(model, fp32_path, input_size)
    if crops is not None:
        quantize_int8(fp32_path, path, crops)
    built_s = time.perf_counter() - started
    logger.info("ONNX %s model built in %.1f s (cached for the next start)", precision, built_s)
    return path, built_s


def onnx_runtime(model, *, input_size: tuple[int, int], max_batch: int | None, weights_id: str, cache_dir=None,
                 precision: str = "fp32", calibration: Sequence[str | os.PathLike] | np.ndarray | None = None,
                 color_rgb: bool = True, spinning: bool = False, threads: int | None = None) -> OnnxRuntimeSession:
    """The ONNX Runtime backend for torch HRNet `model` (eval).

    Args:
        input_size: (H, W) network input px.
        max_batch: largest batch per session call; None: no split.
        weights_id: names the weights + config (the cache key's first part).
        cache_dir: folder of exported models (None: $HRTRACK_CACHE/backends or ~/.cache/hrtrack/backends).
        precision: "fp32", or "int8" (static, calibrated on `calibration`; less accurate).
        calibration: int8 only: image/video paths to make calibration crops from
            (`pose.backends.calibration`), or the (N, 3, H, W) float32 crops themselves.
        color_rgb: the config's DATASET.COLOR_RGB (how calibration crops are made).
        spinning, threads: ORT thread settings (default: no spinning, physical cores).
    """
    expected = getattr(model, "image_size", None)  # (w, h) on PoseHighResolutionNet
    if expected is not None and tuple(int(v) for v in input_size) != (int(expected[1]), int(expected[0])):
        raise ValueError(f"onnx_runtime input_size is (H, W); got {tuple(input_size)} for a network "
                         f"configured for H={expected[1]}, W={expected[0]}")
    path, built_s = build_onnx_model(model, input_size=input_size, weights_id=weights_id, cache_dir=cache_dir,
                                     precision=precision, calibration=calibration, color_rgb=color_rgb)
    return OnnxRuntimeSession(path, max_batch=max_batch, threads=threads, spinning=spinning,
                              name=f"onnxruntime-{precision}", built_s=built_s)
