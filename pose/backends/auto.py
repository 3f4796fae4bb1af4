"""`--backend auto`: eager fp32 at once, and the fastest backend that keeps the keypoints as soon as it is built.

    runtime = auto_runtime(model, device="cpu", max_batch=8, input_size=(192, 256), weights_id=wid,
                           config=experiment)   # returns at once, running eager fp32
    heatmaps = runtime(batch)                    # later calls run the faster backend once it is ready
    runtime.describe()                           # which backend ran, and how close it is to eager

What is tried, and in which order, comes from the hardware
(`pose.backends.hardware.auto_candidates`: ONNX Runtime fp32 and int8 on any
CPU, int8 first where the CPU has int8 dot products, bf16 where it has bf16
units, fp16 on CUDA), not from compiling everything. Each
candidate, in that order, is built (exported, quantised), its keypoints on the
reference people (pose.backends.agreement) are compared with eager fp32's by
OKS, and it is timed against eager at 1 crop and at a full batch; the first
that agrees (`agrees`) and is faster at both sizes is used at once, and a later
one replaces it only if it is faster again (`measure_candidates`); else eager.

On a CPU this happens in a child process (`python -m pose.backends.build`)
while the caller runs eager fp32: the first frame comes as fast as with
`--backend torch`, and the faster backend takes over between two calls once
it is ready. The child runs at the caller's priority: it halves eager's speed
while it runs, but a niced child (a quarter of the CPU) left eager running
for about four times as long, and the faster backend is worth more frames. A child, not a thread, because the ONNX exporter
redirects stdout and silences logging process-wide while it runs, and its
Python-heavy tracing would hold the interpreter lock against the pipeline's
threads. The choice and every candidate's numbers go to
`<cache_dir>/auto-<key>.json`, keyed by the weights, the batch shape, the
machine, the library version, the candidates, the gate and the calibration
set; later starts read it and load the chosen backend's cached artifact
(seconds). A lock file keeps two processes (Ray workers on one machine) from
building the same thing twice: the second one waits for the first's choice.
On CUDA the candidates need no build, so they are measured at once.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from core.io import write_json_atomic
from pose.backends import BackendUnavailable, make_runtime
from pose.backends.agreement import (
    OKS_MIN, ReferencePeople, agreement, agrees, keypoints_from_heatmaps, reference_folder, reference_people,
)
from pose.backends.hardware import auto_candidates, machine_id
from pose.backends.identity import artifact_key, default_cache_dir
from pose.runtime import TorchRuntime

logger = logging.getLogger(__name__)

TIMING_REPEATS = 3
# A candidate must beat eager by this much at a full batch to be worth a second code path.
MIN_SPEEDUP = 1.1
LOCK_POLL_S = 2.0


def speedups(eager, runtime, batches: dict[int, np.ndarray], repeats: int = TIMING_REPEATS) -> dict[int, float]:
    """{batch size: eager seconds / `runtime` seconds}, the two timed in turns (a busy machine slows both alike)."""
    for batch in batches.values():
        eager(batch), runtime(batch)  # warm-up: first calls allocate
    ratios = {}
    for size, batch in batches.items():
        times = {"eager": [], "runtime": []}
        for _ in range(repeats):
            for name, call in (("eager", eager), ("runtime", runtime)):
                started = time.perf_counter()
                call(batch)
                times[name].append(time.perf_counter() - started)
        ratios[size] = statistics.median(times["eager"]) / statistics.median(times["runtime"])
    return ratios


def measure_candidates(model, *, candidates, device, max_batch, input_size, weights_id, cache_dir, calibration,
                       people: ReferencePeople, progress=logger.info, on_choice=None) -> dict:
    """Build, check and time `candidates` in order; the decision record of the fastest that qualifies.

    A candidate qualifies when it agrees with eager fp32 (`agrees`), is at least `MIN_SPEEDUP` times
    eager at a full batch and no slower at 1 crop; it replaces the choice so far only when it is
    `MIN_SPEEDUP` times faster than that one too (a lower precision must pay for itself).
    Returns {"backend", "reason", "candidates": [row per candidate], "gate": {...}}; `backend` is
    "torch" when none qualifies. `progress(text)` hears what is being built; `on_choice(record)` each
    better choice as soon as it is made, so that it can be used while the next candidate builds.
    """
    eager = TorchRuntime(model, device=device, max_batch=max_batch)
    reference_xy = keypoints_from_heatmaps(eager(people.crops), input_size)
    batches = {1: people.crops[:1], max_batch: np.resize(people.crops, (max_batch, *people.crops.shape[1:]))}
    gate = {"oks_min": OKS_MIN, "reference": people.source, "people": len(people)}
    rows, chosen = [], None
    for name in candidates:
        progress(f"building {name} (then checking it against eager fp32 on {len(people)} reference people)")
        started = time.perf_counter()
        try:
            runtime = make_runtime(name, model, device=device, max_batch=max_batch, input_size=input_size,
                                   weights_id=weights_id, cache_dir=cache_dir, calibration=calibration)
        except BackendUnavailable as error:
            rows.append({"backend": name, "runs": False, "reason": str(error)})
            progress(f"{name} cannot run here: {error}")
            continue
        row = {"backend": name, "runs": True, "build_s": round(time.perf_counter() - started, 2),
               **agreement(reference_xy, keypoints_from_heatmaps(runtime(people.crops), input_size), people)}
        row["agrees"] = agrees(row)
        if row["agrees"]:
            row["speedup"] = {str(size): ratio for size, ratio in speedups(eager, runtime, batches).items()}
            full = row["speedup"][str(max_batch)]
            row["faster"] = full >= MIN_SPEEDUP and row["speedup"]["1"] >= 1.0 and (
                chosen is None or full >= MIN_SPEEDUP * chosen["speedup"][str(max_batch)])
        rows.append(row)
        progress(f"{name}: built in {row['build_s']:.0f} s; OKS to eager {row['oks_mean']:.3f} "
                 f"(gate {OKS_MIN}){_speed_text(row)}")
        if row.get("faster"):
            chosen = row
            if on_choice is not None:
                on_choice({"backend": name, "reason": _reason(chosen, rows, max_batch), "candidates": list(rows),
                           "gate": gate, "final": False})
    return {"backend": chosen["backend"] if chosen else "torch", "reason": _reason(chosen, rows, max_batch),
            "candidates": rows, "gate": gate, "final": True}


def _speed_text(row: dict) -> str:
    if "speedup" not in row:
        return ""
    return "; " + ", ".join(f"{ratio:.2f}x eager at {size}" for size, ratio in row["speedup"].items())


def _reason(chosen: dict | None, rows: list[dict], max_batch: int) -> str:
    not_used = []
    for row in rows:
        if row is chosen:
            continue
        if not row["runs"]:
            not_used.append(f"{row['backend']} ({row['reason']})")
        elif not row["agrees"]:
            not_used.append(f"{row['backend']} (OKS to eager {row['oks_mean']:.3f} < {OKS_MIN})")
        else:
            not_used.append(f"{row['backend']} (not enough faster:{_speed_text(row)[1:]})")
    if chosen is None:
        text = "no candidate is both faster than eager fp32 and as accurate"
    else:
        text = (f"{chosen['backend']}: {chosen['speedup'][str(max_batch)]:.2f}x eager fp32 at {max_batch} crops, "
                f"{chosen['speedup']['1']:.2f}x at 1; OKS to eager {chosen['oks_mean']:.3f} "
                f"(min {chosen['oks_min']:.3f}) on {chosen['people']} reference people")
    return text + ("; not used: " + "; ".join(not_used) if not_used else "")


def _calibration_id(calibration) -> object:
    if calibration is None:
        return "reference people"
    if isinstance(calibration, np.ndarray):
        import hashlib  # noqa: PLC0415  (only for crops given as an array)

        return hashlib.sha256(np.ascontiguousarray(calibration)).hexdigest()
    from pose.backends.calibration import calibration_fingerprint  # noqa: PLC0415  (OpenCV readers)

    return calibration_fingerprint(calibration)


def choice_path(cache_dir, *, device, max_batch, input_size, weights_id, candidates, reference: str,
                calibration=None) -> Path:
    """The cached decision's file for this network, batch shape, machine, candidates, gate and calibration."""
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    key = artifact_key(weights_id, "auto", (max_batch, 3, input_size[1], input_size[0]),
                       machine=machine_id(device), torch=torch.__version__, candidates=list(candidates),
                       gate=OKS_MIN, reference=reference, calibration=_calibration_id(calibration))
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / f"{key}.json"


class AutoRuntime:
    """A `Runtime` that runs eager fp32 until the chosen faster backend is ready, then that one.

    The swap happens between two calls, never inside one. `describe()` says what ran.
    """

    def __init__(self, eager, *, max_batch: int, load_choice, wait_for_choice=None, requested: str = "auto"):
        """eager: the fp32 runtime to start with; load_choice(record) -> runtime of a decision record;
        wait_for_choice(on_interim): blocks until the final decision record exists and returns it (None:
        the build failed), calling on_interim(record) for each better choice made on the way; None when
        the record is already known (then call `set_choice` at once)."""
        self.device = str(getattr(eager, "device", "cpu"))
        self.max_batch = max_batch
        self._eager = eager
        self._current = eager
        self._load_choice = load_choice
        self._ready = None  # (runtime, record) waiting for the next call
        self._lock = threading.Lock()
        self._record: dict | None = None
        self._history: list[dict] = [{"backend": "torch", "from_call": 0}]
        self._calls = 0
        self._started = time.perf_counter()
        self._closed = threading.Event()
        self._cleanup = []
        self._watcher = None
        if wait_for_choice is not None:
            self._watcher = threading.Thread(target=self._watch, args=(wait_for_choice,), name="auto-backend",
                                             daemon=True)
            self._watcher.start()

    @property
    def backend(self) -> str:
        """The backend the next call runs."""
        return self._record["backend"] if self._ready is not None else self._history[-1]["backend"]

    def _watch(self, wait_for_choice) -> None:
        record = wait_for_choice(self._interim)
        if record is not None and not self._closed.is_set():
            self.set_choice(record)

    def _interim(self, record: dict) -> None:
        if not self._closed.is_set():
            self.set_choice(record)

    def set_choice(self, record: dict) -> None:
        """Adopt decision `record`: load its backend (from the cache) and run it from the next call on."""
        previous, self._record = self._record, record
        if previous is not None and previous["backend"] == record["backend"]:
            return  # the final word on a backend already running (or about to)
        if record["backend"] == "torch":
            logger.info("backend auto: staying with eager fp32 (torch): %s", record["reason"])
            return
        try:
            runtime = self._load_choice(record)
        except (BackendUnavailable, OSError, ValueError, RuntimeError) as error:
            logger.warning("backend auto: could not load %s (%s); staying with eager fp32", record["backend"], error)
            return
        with self._lock:
            self._ready = runtime
        waited = time.perf_counter() - self._started
        logger.info("backend auto -> %s%s: %s", record["backend"],
                    f" after {waited:.0f} s of eager fp32" if self._calls else "", record["reason"])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 normalised crops -> (N, J, H/4, W/4) float32 heatmaps."""
        if self._ready is not None:
            with self._lock:
                self._current, self._ready = self._ready, None
                switch = {"backend": self._record["backend"], "from_call": self._calls}
                # A choice known before the first call (the cache) replaces eager; a later one follows it.
                self._history = [switch] if self._calls == 0 else [*self._history, switch]
        self._calls += 1
        return self._current(batch)

    def describe(self) -> dict:
        """{"requested", "backend" (the one running now), "history" [{backend, from_call}], "reason", "agreement"}."""
        described = {"requested": "auto", "backend": self.backend, "history": list(self._history)}
        if self._record is not None:
            described["reason"] = self._record["reason"]
            chosen = next((row for row in self._record["candidates"] if row["backend"] == self.backend), None)
            if chosen is not None:
                described["agreement"] = {key: chosen[key] for key in ("oks_mean", "oks_min", "mean_px", "within_2px")}
                described["speedup"] = chosen.get("speedup")
        else:
            described["reason"] = "eager fp32 while the faster backend is built in the background"
        return described

    def settled(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` s (None: as long as it takes) for the choice; True once it is made (or failed)."""
        if self._watcher is not None:
            self._watcher.join(timeout)
            return not self._watcher.is_alive()
        return True

    def add_cleanup(self, action) -> None:
        self._cleanup.append(action)

    def close(self) -> None:
        """Stop a background build still running (its finished artifacts stay cached for the next start)."""
        self._closed.set()
        while self._cleanup:
            self._cleanup.pop()()
        if self._watcher is not None:
            self._watcher.join(timeout=10)  # it removes the build's scratch folder once the child is gone


class _BackgroundBuild:
    """The child process that builds and measures the candidates, and the lock that makes it the only one."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = path.with_suffix(".building")
        self.process: subprocess.Popen | None = None
        self._stopping = False

    def claim(self) -> bool:
        """True when this process may build (it now holds the lock); False while another live process does."""
        for _ in range(2):
            try:
                descriptor = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _holder_alive(self.lock):
                    return False
                self.lock.unlink(missing_ok=True)  # left by a build that died
                continue
            with os.fdopen(descriptor, "w") as handle:
                handle.write(str(os.getpid()))
            return True
        return False

    def start(self, spec: dict, folder: Path) -> None:
        spec_path = folder / "spec.json"
        spec_path.write_text(json.dumps(spec))
        environment = dict(os.environ, PYTHONUNBUFFERED="1")
        root = str(Path(__file__).resolve().parents[2])
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [root, environment.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pose.backends.build", str(spec_path)], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
        with open(self.lock, "w") as handle:  # the child is the builder now: it holds the lock while it lives
            handle.write(str(self.process.pid))

    def wait(self, started: float, on_interim) -> dict | None:
        """Relay the child's progress lines and interim choices (to `on_interim`); its final decision record when it
        succeeded, else None (the reason logged)."""
        tail = []
        for line in self.process.stdout:
            line = line.rstrip()
            if line.startswith("choice: "):
                on_interim(json.loads(line.removeprefix("choice: ")))
            elif line.startswith("progress: "):
                logger.info("backend auto (%.0f s, in the background): %s", time.perf_counter() - started,
                            line.removeprefix("progress: "))
            elif line:
                tail = (tail + [line])[-20:]
        status = self.process.wait()
        self.lock.unlink(missing_ok=True)
        if status == 0 and self.path.is_file():
            return json.loads(self.path.read_text())
        if not self._stopping:
            logger.warning("backend auto: the background build failed (exit status %s); staying with eager fp32:\n%s",
                           status, "\n".join(tail))
        return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self._stopping = True
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            logger.info("backend auto: background build stopped; what it finished stays cached for the next start")
        if self.process is not None:
            self.lock.unlink(missing_ok=True)


def _holder_alive(lock: Path) -> bool:
    try:
        pid = int(lock.read_text().strip() or 0)
        os.kill(pid, 0)
    except (ValueError, OSError):
        return False
    return True


def _wait_for_other_build(path: Path, lock: Path) -> dict | None:
    """Poll until another process's build writes `path` (its decision) or dies; the record or None."""
    while not path.is_file() and _holder_alive(lock):
        time.sleep(LOCK_POLL_S)
    return json.loads(path.read_text()) if path.is_file() else None


def auto_runtime(model, *, device, max_batch, input_size, weights_id, cache_dir=None, calibration=None,
                 config=None, reference: ReferencePeople | None = None, wait: bool = False) -> AutoRuntime:
    """The `auto` runtime (see the module docstring).

    Args:
        model, device, max_batch, input_size, weights_id, cache_dir, calibration: as `make_runtime`.
        config: the network's experiment (anything `pose.load_config` takes); the background build
            rebuilds the network from it and its state dict. None: measure in this process, blocking.
        reference: the people to check agreement on (None: `reference_people`).
        wait: measure in this process before returning, even where a background build is possible.
    """
    max_batch = max_batch or 1
    eager = TorchRuntime(model, device=device, max_batch=max_batch)
    candidates = auto_candidates(device)
    # The key names the reference folder; its images are read only when there is something to measure.
    source = reference.source if reference is not None else str(reference_folder()[0])
    path = choice_path(cache_dir, device=device, max_batch=max_batch, input_size=input_size, weights_id=weights_id,
                       candidates=candidates, reference=source, calibration=calibration)

    def load_choice(record):
        return make_runtime(record["backend"], model, device=device, max_batch=max_batch, input_size=input_size,
                            weights_id=weights_id, cache_dir=cache_dir, calibration=calibration)

    runtime = AutoRuntime(eager, max_batch=max_batch, load_choice=load_choice)
    if path.is_file():
        runtime.set_choice(json.loads(path.read_text()))
        return runtime
    try:
        people = reference if reference is not None else reference_people(input_size)
    except FileNotFoundError as error:
        logger.warning("backend auto -> torch: the reference people are missing (%s)", error)
        runtime.set_choice({"backend": "torch", "reason": f"no reference people to check agreement on ({error})",
                            "candidates": []})
        return runtime
    if wait or config is None or str(device).startswith("cuda"):
        logger.info("backend auto: measuring %s against eager fp32 (first start only; cached in %s)",
                    ", ".join(candidates), path.parent)
        record = measure_candidates(model, candidates=candidates, device=device, max_batch=max_batch,
                                    input_size=input_size, weights_id=weights_id, cache_dir=cache_dir,
                                    calibration=calibration, people=people,
                                    progress=lambda text: logger.info("backend auto: %s", text))
        write_json_atomic(path, record, indent=1)
        runtime.set_choice(record)
        return runtime
    return _start_in_background(model, eager, path, load_choice, config=config, candidates=candidates,
                                device=device, max_batch=max_batch, input_size=input_size, weights_id=weights_id,
                                cache_dir=cache_dir, calibration=calibration, people=people)


def _start_in_background(model, eager, path: Path, load_choice, *, config, candidates, device, max_batch, input_size,
                         weights_id, cache_dir, calibration, people: ReferencePeople) -> AutoRuntime:
    import torch  # noqa: PLC0415 - torch takes seconds to import: only when this runs

    import pose  # noqa: PLC0415  (the config loader; pose imports this package)

    build = _BackgroundBuild(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not build.claim():
        logger.info("backend auto: another process is choosing the backend for these weights (%s); running "
                    "eager fp32 until it is done", build.lock)
        return AutoRuntime(eager, max_batch=max_batch, load_choice=load_choice,
                           wait_for_choice=lambda on_interim: _wait_for_other_build(path, build.lock))
    folder = Path(tempfile.mkdtemp(prefix="auto-build-", dir=path.parent))
    try:
        torch.save(model.state_dict(), folder / "weights.pt")
        np.save(folder / "people_crops.npy", people.crops)
        np.savez(folder / "people.npz", px_per_input_px=people.px_per_input_px, areas=people.areas,
                 labeled=people.labeled if people.labeled is not None else np.zeros((0, 0), bool))
        if isinstance(calibration, np.ndarray):
            np.save(folder / "calibration.npy", calibration)
        spec = {"config": pose.load_config(config).to_dict(), "weights": str(folder / "weights.pt"),
                "people": str(folder / "people.npz"), "people_crops": str(folder / "people_crops.npy"),
                "people_source": people.source, "candidates": list(candidates), "device": str(device),
                "max_batch": max_batch, "input_size": list(input_size), "weights_id": weights_id,
                "cache_dir": None if cache_dir is None else str(cache_dir), "decision": str(path),
                "calibration": (str(folder / "calibration.npy") if isinstance(calibration, np.ndarray)
                                else None if calibration is None else [str(p) for p in calibration])}
        build.start(spec, folder)
    except BaseException:
        build.lock.unlink(missing_ok=True)
        _remove_folder(folder)
        raise
    logger.info("backend auto: first start for these weights on this machine: running eager fp32 while %s "
                "is built and checked in the background (a minute or two on a small CPU; the result is cached)",
                " / ".join(candidates))

    def wait_for_choice(on_interim):
        try:
            return build.wait(started, on_interim)
        finally:
            _remove_folder(folder)

    runtime = AutoRuntime(eager, max_batch=max_batch, load_choice=load_choice, wait_for_choice=wait_for_choice)
    runtime.add_cleanup(build.stop)
    atexit.register(runtime.close)
    return runtime


def _remove_folder(folder: Path) -> None:
    import shutil  # noqa: PLC0415  (only when a build folder is cleaned up)

    shutil.rmtree(folder, ignore_errors=True)
