"""The network call behind one small interface.

A runtime maps a normalised input batch to heatmaps:

    heatmaps = runtime(batch)   # (N, 3, H, W) float32 -> (N, J, H/4, W/4) float32, numpy in and out

Pre- and post-processing never touch torch, so an ONNX Runtime, torch.compile
or fp16 runtime can be added next to `TorchRuntime` without changing them.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)


class Runtime(Protocol):
    """Anything that turns a normalised crop batch into heatmaps."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, J, H/4, W/4) float32."""
        ...


def disable_tf32() -> None:
    """Turn TF32 off for CUDA matmuls and convolutions (process-wide torch flags).

    On Ampere and newer GPUs torch 2.x runs float32 convolutions in TF32 by
    default (10-bit mantissa); the official numbers are true float32.
    """
    import torch  # noqa: PLC0415 - torch takes seconds to import; this module is imported without it

    # The legacy flags, on purpose: in torch 2.14 setting the new
    # `fp32_precision` flags makes any later read of `allow_tf32` (by us or by
    # other libraries) raise, while the legacy setters keep both APIs readable.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


class TorchRuntime:
    """Runs a torch module in eval mode under `torch.inference_mode`.

    Args:
        model: the network (moved to `device` and `dtype`, set to eval).
        device: "cpu", "cuda", "cuda:N".
        dtype: "float32" (exact), "float16" (CUDA only) or "bfloat16" (faster where the
            hardware has it, not exact; `pose.backends.hardware` says where).
        max_batch: largest batch per network call; larger inputs are split so
            that GPU memory stays bounded. None = no splitting.
        exact: on CUDA, disable TF32 so float32 results match the references.
        channels_last: run in NHWC memory layout (oneDNN's fast path on the CPU).
    """

    def __init__(self, model, device: str = "cpu", dtype: str = "float32", max_batch: int | None = None, exact: bool = True,
                 channels_last: bool = False):
        import torch  # noqa: PLC0415 - as above

        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"dtype must be 'float32', 'float16' or 'bfloat16', got {dtype!r}")
        if dtype == "float16" and self.device.type != "cuda":
            raise ValueError("float16 inference needs a CUDA device")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if self.device.type == "cuda" and exact:
            disable_tf32()
        self.dtype = getattr(torch, dtype)
        self.max_batch = max_batch
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device=self.device, dtype=self.dtype, memory_format=self.memory_format).eval()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 normalised crops -> (N, J, H/4, W/4) float32 heatmaps."""
        import torch  # noqa: PLC0415 - as above

        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4:
            raise ValueError(f"runtime input must be (N, 3, H, W), got {batch.shape}")
        step = self.max_batch or max(len(batch), 1)
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(batch), step):
                chunk = torch.from_numpy(batch[start:start + step]).to(self.device, self.dtype, non_blocking=True)
                chunk = chunk.contiguous(memory_format=self.memory_format)
                outputs.append(self.model(chunk).float().cpu().numpy())
        if not outputs:
            raise ValueError("runtime called with an empty batch")
        return np.concatenate(outputs, axis=0) if len(outputs) > 1 else outputs[0]
