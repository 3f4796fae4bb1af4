"""Pose network backends: one `Runtime` ((N, 3, H, W) float32 -> (N, J, H/4, W/4) float32 numpy) per name.

    runtime = make_runtime("torch-compile", model, device="cpu", max_batch=16,
                           input_size=(192, 256), weights_id=weights_id(path, config))

Names (`BACKENDS` holds each one's help line): `torch` is eager fp32, the
reference every other backend is measured against; `auto` picks the fastest
backend whose keypoints agree with it (pose.backends.auto). Compiled and
exported artifacts are cached under `cache_dir` (default
$HRTRACK_CACHE/backends or ~/.cache/hrtrack/backends), keyed by `weights_id`,
backend and batch shape (pose.backends.identity), so a second start is fast.
A backend that cannot run here raises `BackendUnavailable` saying why.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os

from pose.backends.identity import artifact_key, default_cache_dir, weights_id
from pose.backends.hardware import bf16_refusal, fp16_refusal
from pose.runtime import Runtime, TorchRuntime

logger = logging.getLogger(__name__)

# name -> what it is (shown by --help and the benchmark)
BACKENDS: dict[str, str] = {
    "auto": "eager fp32 at once, then the fastest backend this hardware has whose keypoints agree with eager "
            "fp32 (OKS on reference people), built in the background on the first start and cached",
    "torch": "eager PyTorch fp32, the reference",
    "torch-compile": "torch.compile/AOTInductor, channels_last, fp32",
    "torch-compile-bf16": "AOTInductor, channels_last, bf16 (CPUs with AVX512-BF16/AMX, or CUDA); slightly less exact",
    "fp16": "eager float16 (CUDA only); slightly less exact",
    "bf16": "eager bfloat16, channels_last (CPUs with AVX512-BF16/AMX, or CUDA); slightly less exact",
    "onnxruntime": "ONNX Runtime fp32 (the model is exported once and cached)",
    "onnxruntime-int8": "ONNX Runtime static int8 calibrated on crops: fastest on the CPU, trades accuracy",
}

ONNX_PRECISION = {"onnxruntime": "fp32", "onnxruntime-int8": "int8"}

__all__ = ["BACKENDS", "BackendUnavailable", "Runtime", "make_runtime", "weights_id", "artifact_key",
           "default_cache_dir", "check_backend", "backend_summary"]


class BackendUnavailable(ValueError):
    """The backend cannot run on this machine or in this build; the message says why."""


def clone_network(model):
    """A deep copy of `model` whose frozen config dataclasses are shared (they hold mapping proxies, which do not copy)."""
    shared = {id(value): value for module in model.modules() for value in vars(module).values()
              if dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen}
    return copy.deepcopy(model, memo=shared)


def backend_summary(described: dict) -> str:
    """One line for people from `PoseEstimator.describe_backend()`: what ran, and how close it is to eager fp32."""
    name = described["backend"]
    if described.get("requested") != "auto":
        return name + (" (eager fp32, the reference)" if name == "torch" else "")
    history = described.get("history", [])
    text = f"{name} (auto"
    if len(history) > 1:
        text += f"; eager fp32 for the first {history[-1]['from_call']} network calls, while it was built"
    agreement, speedup = described.get("agreement"), described.get("speedup")
    if agreement and speedup:
        best = max(speedup, key=int)
        text += f"; {speedup[best]:.2f}x eager at {best} crops, OKS {agreement['oks_mean']:.3f} to eager fp32"
    elif name == "torch":
        text += f": {described.get('reason', 'eager fp32')}"
    return text + ")"


def check_backend(backend: str) -> str:
    """`backend` if it is a known name, else ValueError listing the choices."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown pose backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    return backend


def make_runtime(
    backend: str,
    model,
    *,
    device: str = "cpu",
    max_batch: int | None = None,
    input_size: tuple[int, int],
    weights_id: str,
    cache_dir: str | os.PathLike | None = None,
    calibration=None,
    config=None,
) -> Runtime:
    """The runtime `backend` names, running `model` (a torch module, left unchanged in fp32).

    Args:
        backend: a name of `BACKENDS`.
        model: the pose network with its weights loaded.
        device: "cpu", "cuda", "cuda:N".
        max_batch: crops per network call the caller makes at most (the flip
            test's doubled batch included); compiled backends are built for it.
        input_size: (w, h) network input px.
        weights_id: `pose.backends.weights_id(weights, config)`, the cache key of the network.
        cache_dir: artifact cache folder (None: `default_cache_dir()`).
        calibration: int8 only: (N, 3, h, w) float32 normalised crops to calibrate on, or image/video
            paths to make them from (pose.backends.calibration); None: the reference images' crops.
        config: auto only: the network's experiment config, so that the candidates can be built in a
            background process while eager fp32 runs (None: `auto` measures before returning).

    Raises:
        ValueError: unknown name (the message lists the choices).
        BackendUnavailable: the backend cannot run here (the message says why).
    """
    check_backend(backend)
    width, height = int(input_size[0]), int(input_size[1])
    if backend == "auto":
        from pose.backends.auto import auto_runtime  # noqa: PLC0415  (measures backends: loads torch)

        return auto_runtime(model, device=device, max_batch=max_batch, input_size=(width, height),
                            weights_id=weights_id, cache_dir=cache_dir, calibration=calibration, config=config)
    if backend == "torch":
        return TorchRuntime(model, device=device, dtype="float32", max_batch=max_batch)
    if backend in ("fp16", "bf16"):
        refusal = fp16_refusal(device) if backend == "fp16" else bf16_refusal(device)
        if refusal:
            raise BackendUnavailable(f"backend {backend!r}: {refusal}")
        dtype = "float16" if backend == "fp16" else "bfloat16"
        # A copy: the caller's fp32 network stays the reference (auto compares against it).
        return TorchRuntime(clone_network(model), device=device, dtype=dtype, max_batch=max_batch,
                            channels_last=True)
    if backend.startswith("torch-compile"):
        precision = "bf16" if backend.endswith("bf16") else "fp32"
        if precision == "bf16" and (refusal := bf16_refusal(device)):
            raise BackendUnavailable(f"backend {backend!r}: {refusal}")
        from pose.backends.compiled import compiled_runtime  # noqa: PLC0415  (torch._inductor: heavy)

        return compiled_runtime(model, device=device, precision=precision, max_batch=max_batch or 1,
                                input_size=(width, height), weights_id=weights_id,
                                cache_dir=cache_dir if cache_dir is not None else default_cache_dir())
    if not str(device).startswith("cpu"):
        raise BackendUnavailable(f"backend {backend!r} runs on the CPU only here (device is {device!r})")
    try:
        from pose.backends.onnx import onnx_runtime  # noqa: PLC0415  (onnxruntime: heavy)
    except ModuleNotFoundError as error:
        if error.name not in ("pose.backends.onnx", "onnxruntime", "onnx"):
            raise
        raise BackendUnavailable(f"backend {backend!r} is not available in this build ({error})") from error
    # onnx_runtime takes (H, W), the shape of the batch it is called with.
    return onnx_runtime(model, input_size=(height, width), max_batch=max_batch or 1, weights_id=weights_id,
                        cache_dir=cache_dir if cache_dir is not None else default_cache_dir(),
                        precision=ONNX_PRECISION[backend], calibration=calibration)
