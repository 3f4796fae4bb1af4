"""`--backend auto`: the fastest backend whose keypoints agree with eager fp32, measured once and cached.

For each candidate that can run here (`CANDIDATES`, in order), the runtime is
built (compiling or exporting it if its artifact is not cached), its keypoints
on the reference crops (pose.backends.agreement) are compared with eager
fp32's, and a full batch (`max_batch` crops) is timed. The fastest agreeing
candidate wins; eager fp32 (`torch`) always agrees and is the fallback. The
choice and every candidate's numbers are written to
`<cache_dir>/auto-<key>.json`, keyed by the weights, the batch shape, the
machine and the torch version, so later starts read it instead of measuring.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from core.io import write_json_atomic
from pose.backends import BackendUnavailable, make_runtime
from pose.backends.agreement import agreement, agrees, keypoints_from_heatmaps, reference_crops
from pose.backends.hardware import int8_skip_reason, machine_id
from pose.backends.identity import artifact_key, default_cache_dir
from pose.runtime import TorchRuntime

logger = logging.getLogger(__name__)

CANDIDATES = ("torch", "torch-compile", "torch-compile-bf16", "bf16", "fp16", "onnxruntime", "onnxruntime-int8")
TIMING_REPEATS = 3


def seconds_per_call(runtime, batch: np.ndarray, repeats: int = TIMING_REPEATS, warmup: int = 1) -> float:
    """Median seconds of `runtime(batch)` after `warmup` calls."""
    for _ in range(warmup):
        runtime(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        runtime(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure_candidates(model, *, device, max_batch, input_size, weights_id, cache_dir, calibration,
                       candidates=None) -> list[dict]:
    """One row per candidate: name, runs (bool), reason (why not), seconds per full batch, agreement metrics."""
    candidates = CANDIDATES if candidates is None else candidates
    crops = reference_crops(input_size)
    batch = np.resize(crops, (max_batch, *crops.shape[1:])).astype(np.float32)
    reference_xy = None
    rows = []
    for name in candidates:
        row = {"backend": name}
        skip = int8_skip_reason(device) if name == "onnxruntime-int8" else None
        if skip:
            rows.append({**row, "runs": False, "reason": skip})
            continue
        try:
            runtime = make_runtime(name, model, device=device, max_batch=max_batch, input_size=input_size,
                                   weights_id=weights_id, cache_dir=cache_dir,
                                   calibration=crops if calibration is None else calibration)
        except BackendUnavailable as error:
            rows.append({**row, "runs": False, "reason": str(error)})
            continue
        xy = keypoints_from_heatmaps(runtime(crops), input_size)
        if reference_xy is None:  # the first candidate is eager fp32, the reference
            reference_xy = xy
        metrics = agreement(reference_xy, xy)
        rows.append({**row, "runs": True, "seconds_per_batch": seconds_per_call(runtime, batch),
                     "agrees": agrees(metrics), **metrics})
        logger.info("auto: %s: %.3f s per %d crops, mean %.3f px, %.1f%% within 2 px", name,
                    rows[-1]["seconds_per_batch"], max_batch, metrics["mean_px"], 100 * metrics["within_2px"])
    return rows


def choose(rows: list[dict]) -> tuple[str, str]:
    """(backend, reason): the fastest agreeing row."""
    agreeing = [row for row in rows if row.get("agrees")]
    best = min(agreeing, key=lambda row: row["seconds_per_batch"])
    eager = next(row for row in rows if row["backend"] == "torch")
    reason = (f"{best['backend']} is the fastest backend that agrees with eager fp32 "
              f"({eager['seconds_per_batch'] / best['seconds_per_batch']:.2f}x eager; mean {best['mean_px']:.3f} px, "
              f"{100 * best['within_2px']:.1f}% within 2 px)")
    refused = [f"{row['backend']} (disagrees: mean {row['mean_px']:.2f} px)" for row in rows
               if row.get("runs") and not row["agrees"]]
    refused += [f"{row['backend']} ({row['reason']})" for row in rows if not row["runs"]]
    if refused:
        reason += "; not used: " + "; ".join(refused)
    return best["backend"], reason


def choice_path(cache_dir, *, device, max_batch, input_size, weights_id, candidates) -> Path:
    """The cached choice's file for this network, batch shape and machine."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    key = artifact_key(weights_id, "auto", (max_batch, 3, input_size[1], input_size[0]),
                       machine=machine_id(device), torch=torch.__version__, candidates=list(candidates))
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / f"{key}.json"


def auto_runtime(model, *, device, max_batch, input_size, weights_id, cache_dir=None, calibration=None):
    """The runtime of the fastest agreeing backend (measured on first use, then read from the cache)."""
    max_batch = max_batch or 1
    path = choice_path(cache_dir, device=device, max_batch=max_batch, input_size=input_size, weights_id=weights_id,
                       candidates=CANDIDATES)
    if path.exists():
        record = json.loads(path.read_text())
        backend, reason = record["backend"], record["reason"]
        logger.info("backend auto -> %s (cached in %s): %s", backend, path, reason)
    else:
        try:
            rows = measure_candidates(model, device=device, max_batch=max_batch, input_size=input_size,
                                      weights_id=weights_id, cache_dir=cache_dir, calibration=calibration,
                                      candidates=CANDIDATES)
        except FileNotFoundError as error:
            logger.warning("backend auto -> torch: the reference images are missing (%s)", error)
            return TorchRuntime(model, device=device, max_batch=max_batch)
        backend, reason = choose(rows)
        write_json_atomic(path, {"backend": backend, "reason": reason, "candidates": rows}, indent=1)
        logger.info("backend auto -> %s: %s (measured once; cached in %s)", backend, reason, path)
    return make_runtime(backend, model, device=device, max_batch=max_batch, input_size=input_size,
                        weights_id=weights_id, cache_dir=cache_dir, calibration=calibration)
