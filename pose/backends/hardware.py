"""What this machine's processor and accelerator can run, and why not when they cannot.

bf16 is fast on a CPU only with native bf16 dot products (AVX512-BF16 or
AMX-BF16); elsewhere oneDNN emulates it, slower than fp32, so it is refused
rather than silently made slow. fp16 is a CUDA-only path here.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The vector units that decide which backend is fastest: "AMD EPYC" with 2 cores named both an AVX512-VNNI
# machine (int8 2.8x fp32) and an AVX2-only one (int8 no faster) that these sessions ran on.
SPEED_FLAGS = (*BF16_FLAGS, "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile")


def cpu_flags(cpuinfo: Path | None = None) -> frozenset[str]:
    """The feature flags of the first processor in `cpuinfo` (default /proc/cpuinfo; empty where it is missing, e.g. macOS)."""
    try:
        text = Path(cpuinfo or CPUINFO).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def bf16_refusal(device: str, flags: frozenset[str] | None = None) -> str | None:
    """Why bf16 cannot run fast on `device`, or None when it can."""
    if str(device).startswith("cuda"):
        return None
    flags = cpu_flags() if flags is None else flags
    if any(flag in flags for flag in BF16_FLAGS):
        return None
    return (f"bf16 needs a CPU with native bf16 instructions ({' or '.join(BF16_FLAGS)} in /proc/cpuinfo); "
            "this CPU has neither, so bf16 would be emulated and slower than fp32")


INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_skip_reason(device: str, flags: frozenset[str] | None = None) -> str | None:
    """Why static int8 may not be faster than fp32 on this CPU (None: it has int8 dot products, or `device` is not a CPU).

    Without them int8 ran 0.98x fp32 ONNX Runtime on one AVX2-only CPU (benchmarks/end_to_end.py) and 2.05x
    on another (benchmarks/backends.py), so `auto` tries it last there (`auto_candidates`).
    """
    if not str(device).startswith("cpu"):
        return None
    flags = cpu_flags() if flags is None else flags
    if any(flag in flags for flag in INT8_FLAGS):
        return None
    return f"no int8 dot products on this CPU ({' or '.join(INT8_FLAGS)}): int8 is no faster than fp32 here"


def auto_candidates(device: str, flags: frozenset[str] | None = None) -> tuple[str, ...]:
    """The backends `auto` builds and tries for `device`, most promising first, chosen from what the hardware has.

    Measured on 2-core CPUs (benchmarks/backends.py, HRNet-W32 256x192, x eager fp32 at 8 crops): with int8
    dot products (AVX512-VNNI) static int8 ran 5.3x, eager bf16 2.6x, ONNX Runtime fp32 1.7x and
    torch-compile 1.7x after 50 s of compiling. Without them int8 is a gamble: 0.98x ONNX Runtime fp32 on
    one AVX2-only EPYC, 2.05x on another. So every CPU tries ONNX Runtime fp32 (it exports in seconds and
    ties torch-compile) and int8 (`auto` keeps it only where it measures faster): int8 first where the
    CPU has int8 dot products, after fp32 elsewhere, so that fp32 takes over early; bf16 where the CPU
    has bf16 units (elsewhere it is emulated); fp16 on CUDA. torch-compile is not tried: it ties ONNX
    Runtime fp32 for minutes of compiling.
    """
    if str(device).startswith("cuda"):
        return ("fp16",)
    flags = cpu_flags() if flags is None else flags
    int8_first = int8_skip_reason(device, flags) is None
    candidates = ["onnxruntime-int8"] if int8_first else []
    if bf16_refusal(device, flags) is None:
        candidates.append("bf16")
    candidates.append("onnxruntime")
    if not int8_first:
        candidates.append("onnxruntime-int8")
    return tuple(candidates)


def fp16_refusal(device: str) -> str | None:
    """Why fp16 cannot run on `device`, or None when it can."""
    if not str(device).startswith("cuda"):
        return f"fp16 runs on CUDA only (device is {device!r}); on the CPU use bf16 where the CPU has it"
    import torch  # noqa: PLC0415  (heavy; only when a CUDA backend is asked for)

    if not torch.cuda.is_available():
        return f"fp16 needs CUDA, but device {device!r} is not available"
    return None


def machine_id(device: str) -> str:
    """What a measured backend choice depends on: the processor model and flags, or the GPU name."""
    if str(device).startswith("cuda"):
        import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"
    model = ""
    try:
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"cpu:{platform.machine()}:{model}:{os.cpu_count()}:{','.join(sorted(cpu_flags() & set(SPEED_FLAGS)))}"
