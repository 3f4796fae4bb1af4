"""torch-compile backends: the network ahead-of-time compiled by Inductor (AOTInductor), fp32 or bf16, channels_last.

Why AOTInductor and not `torch.compile` with a warm Inductor cache: a
`.pt2` package is one file in our own keyed folder, loads in well under a
second and needs no tracing at start, while a `torch.compile` second start
still re-traces the model with Dynamo before any cache hit, and its cache is
steered by a process-wide environment variable (TORCHINDUCTOR_CACHE_DIR).
Measured on the small trained HRNet (W16 48x64) on this 2-core machine under load:
`torch.compile` (Inductor, freezing) took 68 s to the first output and still 46 s
with a warm Inductor cache; AOTInductor took 88 s to compile once, then 4.7 s
to load the package and 3.8 s for its first calls. For HRNet-W32 256x192 the
first compile took 8 min under the same load. benchmarks/backends.py
measures both starts of every backend (`first_start_s`, `second_start_s`).

Batch shape: the package is compiled for one static batch, `max_batch` crops
(the pipeline's call size: 8 crops doubled by the flip test on the CPU); a
smaller call is padded with zero crops to it and a larger one split into
chunks of it, so nothing recompiles at run time. Why static: with a dynamic
batch dimension, Inductor's weight freezing prepacks the oneDNN convolution
weights for the example batch and a call of another size corrupts memory
(torch 2.14, CPU); without freezing the package is no faster than eager.
Weights are frozen into the package, so it is keyed by the weights' hash.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from core.io import commit_part
from pose.backends import clone_network
from pose.backends.hardware import machine_id
from pose.backends.identity import artifact_dir, artifact_key

logger = logging.getLogger(__name__)

PACKAGE_NAME = "model.pt2"


def _network_module(model, precision: str):
    """A copy of `model` wrapped to take fp32 input and return fp32 heatmaps, computing in `precision`, channels_last."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]

    class Network(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, batch):
            return self.inner(batch.to(dtype)).float()

    # A copy even in fp32: channels_last (and the cast) must not change the caller's network, which
    # stays the eager reference (in NCHW a channels_last network runs several times slower).
    return Network(clone_network(model).to(dtype=dtype, memory_format=torch.channels_last).eval())


def build_package(model, path: Path, *, precision: str, max_batch: int, input_size: tuple[int, int], device: str) -> Path:
    """Export `model` for batches of `max_batch` crops and AOT-compile it into the package `path`."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    width, height = input_size
    network = _network_module(model, precision).to(device)
    example = torch.zeros(max_batch, 3, height, width, device=device).contiguous(memory_format=torch.channels_last)
    started = time.perf_counter()
    with torch.no_grad():
        exported = torch.export.export(network, (example,))
        # aoti_compile_and_package insists on the .pt2 suffix: build under a temporary
        # .pt2 name in the same folder, then rename (a half-built package is never loaded).
        part = path.with_name(f"{path.stem}.part{path.suffix}")
        torch._inductor.aoti_compile_and_package(exported, package_path=str(part),
                                                 inductor_configs={"freezing": True})
    commit_part(part, path)
    logger.info("compiled %s (%s, batch %d) in %.1f s", path, precision, max_batch, time.perf_counter() - started)
    return path


class CompiledRuntime:
    """An AOTInductor package as a `Runtime` (numpy in and out; chunks of `max_batch`, the last one zero-padded)."""

    def __init__(self, package: Path, *, device: str, max_batch: int):
        import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

        self.device = torch.device(device)
        self.max_batch = int(max_batch)
        self.package = Path(package)
        self._run = torch._inductor.aoti_load_package(str(package))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 normalised crops -> (N, J, H/4, W/4) float32 heatmaps."""
        import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or len(batch) == 0:
            raise ValueError(f"runtime input must be a non-empty (N, 3, H, W) batch, got {batch.shape}")
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(batch), self.max_batch):
                chunk = batch[start:start + self.max_batch]
                count = len(chunk)
                if count < self.max_batch:
                    chunk = np.concatenate([chunk, np.zeros((self.max_batch - count, *chunk.shape[1:]), np.float32)])
                chunk = torch.from_numpy(chunk).to(self.device).contiguous(memory_format=torch.channels_last)
                outputs.append(self._run(chunk)[:count].cpu().numpy())
        return np.concatenate(outputs, axis=0) if len(outputs) > 1 else outputs[0]


def compiled_runtime(model, *, device: str, precision: str, max_batch: int, input_size: tuple[int, int],
                     weights_id: str, cache_dir) -> CompiledRuntime:
    """The cached package for (weights, backend, batch shape, torch version, machine), built on first use."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    width, height = input_size
    key = artifact_key(weights_id, f"torch-compile-{precision}", (max_batch, 3, height, width),
                       torch=torch.__version__, machine=machine_id(device))
    path = artifact_dir(cache_dir, key) / PACKAGE_NAME
    if path.exists():
        logger.info("loading the compiled network %s", path)
    else:
        logger.info("compiling the network for %s (first start: minutes on a small CPU; cached in %s)",
                    f"torch-compile {precision}", path.parent)
        build_package(model, path, precision=precision, max_batch=max_batch, input_size=input_size, device=device)
    return CompiledRuntime(path, device=device, max_batch=max_batch)
