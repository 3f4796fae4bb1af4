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

Batch shapes: one package per batch-size bucket (`batch_buckets`). A
call is split into chunks of the largest bucket, and the remainder is padded
with zero crops only up to the smallest bucket that holds it
(`plan_calls`), so nothing recompiles at run time and a 1-person frame pays
for 1 crop, not for `max_batch`: with a single package for 8 crops, 1 person
per frame ran at 0.82x eager; on the trained test network (2-core CPU, under
load) the 1-crop package is 2.8-4.4x faster than the padded 8-crop one and
3.1-4.0x eager, 3 crops through the 4-crop package 2.4-3.4x eager. Why
static: with a dynamic batch dimension, Inductor's weight freezing prepacks
the oneDNN convolution weights for the example batch and a call of another
size corrupts memory (torch 2.14, CPU); without freezing the package is no
faster than eager.

Which buckets: every package costs a full compile (about 50 s for HRNet-W32
on a 2-core CPU) and a copy of the weights in memory (115 MB fp32 for W32),
so only sizes that save real work are built.
- CPU: powers of two up to `max_batch`, and `max_batch`: 1, 2, 4, 8 for the
  live commands' calls of 1-8 crops (no flip test); 1, 2, 4, 8, 16 with the
  flip test, whose calls are 2-16 crops (even: bucket 1 then goes unused, but
  the runtime is not told whether its caller flips). A CPU's crops/s grows
  little with the batch (ONNX Runtime 11.5 crops/s at batch 1, 13.3 at
  batch 8), so padding is what costs: with powers of two a call never pays
  for twice its crops (19% more crops than asked, on average over 1-8).
- CUDA: powers of four up to `max_batch`, and `max_batch`: 1, 4, 16, 64 for
  the pipeline's 64. A GPU's time per call is nearly flat at small batches,
  so padding 2 crops to 4 or 5 to 16 costs little, and four compiles cover
  1-64.
Weights are frozen into each package, so each is keyed by the weights' hash
and its own batch shape (`artifact_key`): the first start builds the missing
ones (a log line each, with its time, under a progress bar), a second start
loads them all. Trained test network: the four CPU packages took 183 s to
build (68, 45, 34, 36 s: the first one also fills Inductor's own caches) and
2.6 s to load on the second start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
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


def batch_buckets(max_batch: int, device: str) -> tuple[int, ...]:
    """The batch sizes to build packages for, ascending; the last one is the chunk size of larger calls.

    Powers of two (CPU) or four (CUDA) below max_batch, and max_batch (the module docstring says why).
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    factor = 4 if str(device).startswith("cuda") else 2
    buckets, size = [], 1
    while size < max_batch:
        buckets.append(size)
        size *= factor
    return (*buckets, int(max_batch))


def plan_calls(count: int, buckets: Sequence[int]) -> list[tuple[int, int]]:
    """(crops, bucket) per package call for a batch of `count` crops, in order.

    Chunks of the largest bucket, then the remainder padded to the smallest
    bucket that holds it: 3 crops with buckets (1, 2, 4, 8) -> [(3, 4)];
    19 -> [(8, 8), (8, 8), (3, 4)].
    """
    if count < 1:
        raise ValueError(f"a batch needs at least one crop, got {count}")
    largest = max(buckets)
    full, remainder = divmod(int(count), largest)
    calls = [(largest, largest)] * full
    if remainder:
        calls.append((remainder, min(bucket for bucket in buckets if bucket >= remainder)))
    return calls


def build_packages(model, paths: dict[int, Path], *, precision: str, input_size: tuple[int, int],
                   device: str) -> dict[int, Path]:
    """Export `model` for each batch size of `paths` (batch -> package path) and AOT-compile it there.

    One log line per package with its time; a progress bar over them when there are several.
    """
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs
    from tqdm import tqdm  # noqa: PLC0415 - only on a first start

    width, height = input_size
    network = _network_module(model, precision).to(device)
    with tqdm(sorted(paths), desc=f"compiling torch-compile {precision}", unit="package",
              disable=len(paths) < 2) as progress:
        for batch in progress:
            path = paths[batch]
            progress.set_postfix(batch=batch)
            started = time.perf_counter()
            example = torch.zeros(batch, 3, height, width, device=device).contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                exported = torch.export.export(network, (example,))
                # aoti_compile_and_package insists on the .pt2 suffix: build under a temporary
                # .pt2 name in the same folder, then rename (a half-built package is never loaded).
                part = path.with_name(f"{path.stem}.part{path.suffix}")
                torch._inductor.aoti_compile_and_package(exported, package_path=str(part),
                                                         inductor_configs={"freezing": True})
            commit_part(part, path)
            logger.info("compiled torch-compile %s for batch %d in %.1f s: %s", precision, batch,
                        time.perf_counter() - started, path)
    return paths


class CompiledRuntime:
    """AOTInductor packages, one per batch bucket, as a `Runtime` (numpy in and out; `plan_calls` splits and pads).

    Args:
        packages: bucket size -> its .pt2 package.
        device: where the packages run ("cpu", "cuda", "cuda:N").

    Attributes:
        buckets: the bucket sizes, ascending.
        runners: bucket size -> the loaded package (a callable on a (bucket, 3, H, W) channels_last tensor).
    """

    def __init__(self, packages: dict[int, Path], *, device: str):
        import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

        self.device = torch.device(device)
        self.packages = {int(batch): Path(path) for batch, path in sorted(packages.items())}
        self.buckets = tuple(self.packages)
        self.max_batch = self.buckets[-1]
        self.runners = {batch: torch._inductor.aoti_load_package(str(path)) for batch, path in self.packages.items()}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 normalised crops -> (N, J, H/4, W/4) float32 heatmaps."""
        import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or len(batch) == 0:
            raise ValueError(f"runtime input must be a non-empty (N, 3, H, W) batch, got {batch.shape}")
        outputs, start = [], 0
        with torch.inference_mode():
            for count, bucket in plan_calls(len(batch), self.buckets):
                chunk = batch[start:start + count]
                start += count
                if count < bucket:
                    chunk = np.concatenate([chunk, np.zeros((bucket - count, *chunk.shape[1:]), np.float32)])
                chunk = torch.from_numpy(chunk).to(self.device).contiguous(memory_format=torch.channels_last)
                outputs.append(self.runners[bucket](chunk)[:count].cpu().numpy())
        return np.concatenate(outputs, axis=0) if len(outputs) > 1 else outputs[0]

    def __repr__(self) -> str:
        return f"CompiledRuntime(buckets={self.buckets}, device={self.device})"


def compiled_runtime(model, *, device: str, precision: str, max_batch: int, input_size: tuple[int, int],
                     weights_id: str, cache_dir, buckets: Sequence[int] | None = None) -> CompiledRuntime:
    """The cached packages for (weights, backend, batch bucket, torch version, machine), the missing ones built first.

    buckets: the batch sizes to build (None: `batch_buckets(max_batch, device)`).
    """
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    width, height = input_size
    buckets = sorted(set(buckets or batch_buckets(max_batch, device)))
    paths = {}
    for batch in buckets:
        key = artifact_key(weights_id, f"torch-compile-{precision}", (batch, 3, height, width),
                           torch=torch.__version__, machine=machine_id(device))
        paths[batch] = artifact_dir(cache_dir, key) / PACKAGE_NAME
    missing = {batch: path for batch, path in paths.items() if not path.exists()}
    if missing:
        logger.info("compiling the network for torch-compile %s, batch sizes %s (first start: about a minute "
                    "each on a small CPU; cached under %s)", precision, ", ".join(map(str, missing)), cache_dir)
        build_packages(model, missing, precision=precision, input_size=input_size, device=device)
    logger.info("loading the compiled network (torch-compile %s, batch sizes %s)", precision,
                ", ".join(map(str, buckets)))
    return CompiledRuntime(paths, device=device)
