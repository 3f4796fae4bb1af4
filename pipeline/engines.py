"""Engines: where the units of work of a batch run (one video each) are done.

* `LocalEngine` (the default): in this process, one task after another, in
  the order given; what `track` and `posetrack run` always did.
* `RayEngine`: on long-lived Ray actors ("workers"), each of which builds the
  models once (`BatchWork.build_models`, the same construction as local) and
  then does many tasks. Without an address it starts a Ray instance on this
  machine with every CPU core (and GPU); `address="auto"` or `"ray://host:10001"`
  joins an existing cluster. The largest videos (by announced frame count)
  start first, so that a run does not end waiting on one long straggler.

Both take the same `Task`s and `BatchWork` and return an `EngineReport`
whose `results` are in task order, so that `pipeline.batch.BatchSummary`
(and the exit status) is the same whichever engine ran.

Outputs with the Ray engine are either written by the workers themselves to
the output folder (`gather=False`: a folder every worker sees at the same
path, the common cluster case), through the same `.part` + rename writers as
locally; or (`gather=True`) written by each worker into a temporary folder of
its own, sent back to the driver as bytes and written there through
`core.io`'s atomic writer (clusters without a shared filesystem). The inputs,
model weights and detection files must be readable by every worker at the
paths given.

Faults: a bad input fails its task only (the work function says so in its
`VideoResult`); a worker process that dies (killed, out of memory) has its
task retried on another worker, up to `max_retries` times, and is replaced;
Ctrl-C on the driver kills the workers and returns with the tasks in flight
marked interrupted: their outputs stay under `.part` names (or, gathered,
were never written), so a rerun redoes them and skips the finished ones.

`ray` is imported only inside `RayEngine.run`: it is an optional extra
(`pip install 'hrtrack[ray]'`) and takes about a second to import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from core.io import write_text_atomic
from core.output_lock import OutputBusyError, hold_output_lock
from pipeline.progress import on_terminal
from pipeline.work import Models, VideoResult, remove_partial_files

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Task:
    """One unit of work (plain data: it travels to Ray workers).

    Attributes:
        name: the name in the summary (unique within a run).
        payload: what `BatchWork.work` takes (a `pipeline.batch.InputVideo`, an annotation file path).
        outputs: the final output files, relative to the output folder ("/" separated).
        markers: files beside them that a task writes, or removes, to say that
            its outputs cover only part of the input (`pipeline.batch.marker_paths`).
        frames: announced length in frames (0 when unknown): the Ray engine starts the largest first.
        resumable: a rerun redoes the task when it was interrupted (False for a live recording).
        lock: the file held while the outputs are written (`core.output_lock`), relative to
            the output folder; the work function holds it, and the driver while it writes
            gathered outputs ("" for none).
    """

    name: str
    payload: object
    outputs: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    frames: int = 0
    resumable: bool = True
    lock: str = ""


@dataclass(frozen=True)
class BatchWork:
    """What every worker runs; picklable (module-level functions, `functools.partial` of them, plain data).

    Attributes:
        build_models: `() -> Models`, called once per worker (once in all by the local engine).
        work: `(payload, out_dir, models) -> VideoResult`: one task into its outputs
            under `out_dir`; reports a bad input in the result instead of raising,
            and re-raises KeyboardInterrupt.
    """

    build_models: Callable[[], Models]
    work: Callable[[object, Path, Models], VideoResult]


class EngineSetupError(RuntimeError):
    """Nothing ran: the models could not be built (missing weights, bad config), or Ray is missing or
    unreachable. The message says which; `track` exits with 2."""


@dataclass
class WorkerStats:
    """What one worker did: tasks finished, frames, and seconds spent on them."""

    label: str
    pid: int = 0
    videos: int = 0
    frames: int = 0
    busy_s: float = 0.0
    died: bool = False

    def add(self, result: VideoResult) -> None:
        self.videos += 1
        self.frames += result.frames
        self.busy_s += result.seconds

    @property
    def fps(self) -> float:
        return self.frames / self.busy_s if self.busy_s > 0 else 0.0


@dataclass
class EngineReport:
    """What an engine did.

    Attributes:
        engine: "local" or "ray".
        results: one `VideoResult` per task run, in task order; the tasks in
            flight at Ctrl-C are "interrupted", those not started are absent.
        workers: per-worker counts (workers that died included, marked).
        setup_s: seconds from the start until the first worker's models were ready.
        wall_s: seconds of the whole run.
        retried: task name -> times it was retried because its worker died.
        not_started: names of the tasks that Ctrl-C left unstarted, in task order.
    """

    engine: str
    results: list[VideoResult] = field(default_factory=list)
    workers: list[WorkerStats] = field(default_factory=list)
    setup_s: float = 0.0
    wall_s: float = 0.0
    retried: dict[str, int] = field(default_factory=dict)
    not_started: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(result.frames for result in self.results)

    @property
    def finished(self) -> int:
        """Tasks that ran to an end (done, truncated or failed)."""
        return sum(result.status != "interrupted" for result in self.results)

    @property
    def processing_s(self) -> float:
        """Seconds from the first worker ready to the end: the throughput's denominator."""
        return max(self.wall_s - self.setup_s, 0.0)

    def lines(self) -> list[str]:
        """Total and per-worker throughput, and the retries (printed under the summary)."""
        seconds = self.processing_s
        rate = (lambda count: count / seconds if seconds > 0 else 0.0)
        lines = [f"{self.engine} engine, {len(self.workers)} worker(s): {self.finished} video(s), "
                 f"{self.frames} frames in {seconds:.1f} s after {self.setup_s:.1f} s of model setup "
                 f"({rate(self.finished):.2f} videos/s, {rate(self.frames):.1f} frames/s)"]
        for worker in self.workers:
            lines.append(f"  worker {worker.label}: {worker.videos} video(s), {worker.frames} frames in "
                         f"{worker.busy_s:.1f} s ({worker.fps:.1f} fps){', died' if worker.died else ''}")
        lines += [f"  retried  {name}: its worker died {count} time(s)" for name, count in self.retried.items()]
        return lines


def _interrupted(task: Task, seconds: float, left: str, frames: int = 0) -> VideoResult:
    rerun = ", a rerun redoes it" if task.resumable else ""
    return VideoResult(task.name, "interrupted", frames, seconds=seconds, reason=f"Ctrl-C; {left}{rerun}")


def _build_models(work: BatchWork) -> Models:
    try:
        return work.build_models()
    except (ValueError, OSError) as error:  # FileNotFoundError included: a missing config or weights file
        raise EngineSetupError(f"cannot set up the models: {error}") from error


def _videos_bar(tasks: Sequence[Task], already_done: int, progress: bool) -> tqdm:
    # Off the terminal (a pipe, a CI log) a bar's redraws would run into the log lines, which
    # already name each video as it ends.
    return tqdm(total=len(tasks) + already_done, initial=already_done, unit="video", desc="videos",
                position=0, disable=not progress or not on_terminal())


class LocalEngine:
    """Every task in this process, one after another, in the order given (Ctrl-C stops after the current one).

    `models`: already built models to use instead of `BatchWork.build_models()`.
    """

    name = "local"
    remote = False  # tasks run here: per-frame progress bars are fine, no scheduling by size

    def __init__(self, models: Models | None = None) -> None:
        self._models = models

    def run(self, tasks: Sequence[Task], work: BatchWork, out_dir: str | Path, *, already_done: int = 0,
            progress: bool = True) -> EngineReport:
        started = time.perf_counter()
        models = self._models if self._models is not None else _build_models(work)
        report = EngineReport("local", setup_s=time.perf_counter() - started)
        worker = WorkerStats(f"pid {os.getpid()} (this process)", os.getpid())
        report.workers.append(worker)
        bar = _videos_bar(tasks, already_done, progress)
        try:
            for position, task in enumerate(tasks):
                task_started = time.perf_counter()
                try:
                    result = work.work(task.payload, Path(out_dir), models)
                except KeyboardInterrupt as interrupt:  # pipeline.work.InputInterrupted says how far it got
                    report.results.append(_interrupted(task, time.perf_counter() - task_started,
                                                       "outputs left as .part files",
                                                       getattr(interrupt, "frames", 0)))
                    report.not_started = [later.name for later in tasks[position + 1:]]
                    break
                report.results.append(result)
                worker.add(result)
                bar.update(1)
        finally:
            bar.close()
            report.wall_s = time.perf_counter() - started
        return report


def _limit_threads(threads: int) -> None:
    """Give torch `threads` intra-op threads: N workers on a machine must not each use every core."""
    import torch  # noqa: PLC0415 - heavy; only in a Ray worker process, which runs the models anyway

    torch.set_num_threads(max(1, int(threads)))


class _VideoWorker:
    """The body of one Ray actor: the models, built once, and one task per `run` call.

    A plain class, made a Ray actor class by `RayEngine.run` (`ray.remote`), so
    that this module imports without Ray.
    """

    def __init__(self, work: BatchWork, threads: int) -> None:
        self._work = work
        self._models: Models | None = None
        self._error = ""
        _limit_threads(threads)
        try:
            self._models = _build_models(work)
        except EngineSetupError as error:  # reported by ready(): the driver stops the run with this reason
            self._error = str(error)

    def ready(self) -> tuple[int, str, str]:
        """(process id, host name, model setup error or "")."""
        return os.getpid(), socket.gethostname(), self._error

    def run(self, task: Task, out_dir: str | None) -> tuple[VideoResult, dict[str, bytes] | None]:
        """Do `task`, writing into `out_dir`; with `out_dir` None, into a temporary folder whose files come back."""
        if out_dir is not None:
            return self._work.work(task.payload, Path(out_dir), self._models), None
        with tempfile.TemporaryDirectory(prefix="hrtrack-gather-") as folder:
            result = self._work.work(task.payload, Path(folder), self._models)
            files = {}
            if result.status != "failed":  # a failed task's finished formats are not kept (a rerun redoes it)
                for name in (*task.outputs, *task.markers):
                    path = Path(folder) / name
                    if path.is_file():
                        files[name] = path.read_bytes()
            return result, files


def write_gathered(out_dir: Path, task: Task, files: dict[str, bytes]) -> None:
    """Write a task's outputs returned by a worker (`--gather`) under `out_dir`, each through the atomic writer.

    Holds the task's lock meanwhile (OutputBusyError, writing nothing, when
    another run holds it). The markers go first (written or removed as the
    worker left them), so that a driver stopped between two files leaves
    outputs that a rerun redoes.
    """
    with hold_output_lock(out_dir / task.lock) if task.lock else contextlib.nullcontext():
        _write_gathered_files(out_dir, task, files)


def _write_gathered_files(out_dir: Path, task: Task, files: dict[str, bytes]) -> None:
    for name in task.markers:
        if name in files:
            write_text_atomic(out_dir / name, files[name])
        else:
            (out_dir / name).unlink(missing_ok=True)
    for name in task.outputs:
        if name in files:
            write_text_atomic(out_dir / name, files[name])


def start_local_ray(ray, num_cpus: int | None = None, **options) -> None:
    """`ray.init` of a Ray instance on this machine, as `RayEngine` starts it (tests and benchmarks use it too).

    Every core by default. Ray normally runs its workers 15 nice levels below
    the driver; here the workers do all the work, so they keep the driver's
    priority, as the local engine's run would have (`worker_niceness` 0).
    """
    system_config = {"worker_niceness": 0, **options.pop("_system_config", {})}
    ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING,
             _system_config=system_config, **options)


@dataclass
class _Worker:
    """The driver's handle of one actor."""

    actor: object
    stats: WorkerStats | None = None  # set once the actor reported ready


class RayEngine:
    """Tasks on long-lived Ray actors (see the module doc).

    Args:
        address: None for a Ray instance on this machine (every core, every
            GPU), "auto" or "ray://HOST:PORT" to join a cluster. A Ray already
            initialised in this process (ray.init) is used as it is.
        workers: number of actors (default: cluster GPUs / gpus_per_worker, or
            cluster CPUs / cpus_per_worker; never more than there are tasks).
        gpus_per_worker: GPUs per actor, fractions allowed (0.5: two workers
            per GPU); default 1 when the cluster has GPUs, else 0.
        cpus_per_worker: CPU cores per actor, and its torch threads (default:
            the cluster's cores shared evenly among the workers, at most one node's).
        gather: outputs come back to the driver and are written there.
        max_retries: times a task is retried after its worker died.
        start_options: extra `ray.init` arguments when this engine starts Ray itself.
    """

    name = "ray"
    remote = True  # tasks run in other processes: no per-frame bars, largest first

    def __init__(self, address: str | None = None, workers: int | None = None,
                 gpus_per_worker: float | None = None, cpus_per_worker: int | None = None,
                 gather: bool = False, max_retries: int = 2, start_options: dict | None = None) -> None:
        self.address = address
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self.cpus_per_worker = cpus_per_worker
        self.gather = gather
        self.max_retries = max_retries
        self.start_options = dict(start_options or {})
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    def running(self) -> dict[str, int]:
        """Task name -> process id of the worker doing it, now (readable from another thread)."""
        with self._lock:
            return dict(self._running)

    def run(self, tasks: Sequence[Task], work: BatchWork, out_dir: str | Path, *, already_done: int = 0,
            progress: bool = True) -> EngineReport:
        try:
            import ray  # noqa: PLC0415 - optional extra (hrtrack[ray]) and about 1 s to import: only --engine ray
        except ImportError as error:
            raise EngineSetupError(f"--engine ray needs Ray: pip install 'hrtrack[ray]' ({error})") from error

        started = time.perf_counter()
        started_here = not ray.is_initialized()
        if started_here:
            try:
                if self.address is None:
                    start_local_ray(ray, **self.start_options)
                else:
                    ray.init(address=self.address, logging_level=logging.WARNING, **self.start_options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = f"the Ray cluster at {self.address}" if self.address else "a Ray instance on this machine"
                raise EngineSetupError(f"cannot start or join {where}: {error}") from error
        try:
            return _RayRun(ray, self, list(tasks), work, Path(out_dir), started).run(already_done, progress)
        finally:
            if started_here:
                ray.shutdown()

    def plan(self, ray, tasks: int) -> tuple[int, int, float]:
        """(workers, CPUs per worker, GPUs per worker) for `tasks` tasks on the cluster `ray` is connected to."""
        resources = ray.cluster_resources()
        cpus = max(1, int(resources.get("CPU", 1)))
        gpus = float(resources.get("GPU", 0))
        node_cpus = max([int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")] or [cpus])
        gpus_per_worker = self.gpus_per_worker if self.gpus_per_worker is not None else (1.0 if gpus >= 1 else 0.0)
        if self.workers is not None:
            workers = self.workers
        elif gpus_per_worker > 0:
            workers = max(1, int(gpus // gpus_per_worker))
        else:
            workers = max(1, cpus // (self.cpus_per_worker or 1))
        workers = min(workers, max(1, tasks))
        cpus_per_worker = self.cpus_per_worker or max(1, min(cpus // workers, node_cpus))
        if workers * cpus_per_worker > cpus or workers * gpus_per_worker > gpus + 1e-9:
            logger.warning("%d workers x (%d CPU, %g GPU) need more than the cluster's %d CPUs and %g GPUs: "
                           "some wait for resources (or for an autoscaler to add nodes)",
                           workers, cpus_per_worker, gpus_per_worker, cpus, gpus)
        return workers, cpus_per_worker, gpus_per_worker

    def _set_running(self, name: str, pid: int | None) -> None:
        with self._lock:
            if pid is None:
                self._running.pop(name, None)
            else:
                self._running[name] = pid


class _RayRun:
    """One `RayEngine.run`: the actors, the queue of tasks (largest first) and the results."""

    def __init__(self, ray, engine: RayEngine, tasks: list[Task], work: BatchWork, out_dir: Path,
                 started: float) -> None:
        self.ray, self.engine, self.tasks, self.work, self.out_dir = ray, engine, tasks, work, out_dir
        self.started = started
        # sorted() is stable: equal sizes keep the given (name) order.
        self.queue: deque[Task] = deque(sorted(tasks, key=lambda task: -task.frames))
        self.results: dict[str, VideoResult] = {}
        self.report = EngineReport("ray")
        self.deaths: dict[str, int] = {}
        self.pending: dict[object, tuple[str, _Worker, Task | None, float]] = {}  # ref -> (kind, worker, task, t0)
        self.idle: list[_Worker] = []
        self.workers: list[_Worker] = []
        self.setup_done: float | None = None

    # -- workers ------------------------------------------------------------------------------

    def start_worker(self) -> None:
        actor = self.actor_class.remote(self.work, self.cpus)
        worker = _Worker(actor)
        self.workers.append(worker)
        self.pending[actor.ready.remote()] = ("ready", worker, None, time.perf_counter())

    def on_ready(self, ref, worker: _Worker) -> None:
        try:
            pid, host, error = self.ray.get(ref)
        except self.ray.exceptions.RayError as error:  # the actor could not even start (import error, no resources)
            raise EngineSetupError(f"a Ray worker did not start: {error}") from error
        if error:
            raise EngineSetupError(error)
        worker.stats = WorkerStats(f"{len(self.report.workers) + 1} (pid {pid} on {host})", pid)
        self.report.workers.append(worker.stats)
        self.idle.append(worker)
        if self.setup_done is None:
            self.setup_done = time.perf_counter()

    def kill(self, worker: _Worker) -> None:
        try:
            self.ray.kill(worker.actor, no_restart=True)
        except Exception as error:  # noqa: BLE001 - already gone: nothing to stop
            logger.debug("ray.kill: %s", error)

    # -- tasks --------------------------------------------------------------------------------

    def submit(self) -> None:
        while self.idle and self.queue:
            worker, task = self.idle.pop(0), self.queue.popleft()
            target = None if self.engine.gather else str(self.out_dir)
            self.pending[worker.actor.run.remote(task, target)] = ("run", worker, task, time.perf_counter())
            self.engine._set_running(task.name, worker.stats.pid)

    def on_result(self, ref, worker: _Worker, task: Task) -> None:
        self.engine._set_running(task.name, None)
        exceptions = self.ray.exceptions
        try:
            result, files = self.ray.get(ref)
        except (exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.OutOfMemoryError,
                exceptions.ObjectLostError) as error:
            self.on_worker_died(worker, task, error)
            return
        except exceptions.RayTaskError as error:  # the work itself raised: a bug, reported as this task's failure
            result, files = VideoResult(task.name, "failed", reason=f"worker error: {error.cause!r}"), None
        self.idle.append(worker)
        if files is not None and result.status != "failed":
            try:
                write_gathered(self.out_dir, task, files)
            except OutputBusyError as busy:
                reason = f"another hrtrack ({busy.holder}) is writing its outputs in {self.out_dir}; left to it"
                logger.warning("%s: %s", task.name, reason)
                result = VideoResult(task.name, "busy", reason=reason)
            except OSError as error:
                logger.error("%s: %s", task.name, error)
                result = dataclasses.replace(result, status="failed", reason=str(error))
        worker.stats.add(result)
        self.results[task.name] = result

    def on_worker_died(self, worker: _Worker, task: Task, error: BaseException) -> None:
        worker.stats.died = True
        self.kill(worker)  # an unreachable actor may still be alive: it must not write beside the retry
        if not self.engine.gather:
            remove_partial_files(self.out_dir / name for name in (*task.outputs, *task.markers))
        deaths = self.deaths[task.name] = self.deaths.get(task.name, 0) + 1
        cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if deaths <= self.engine.max_retries:
            logger.warning("%s: worker %s died (%s); retrying on another worker (retry %d of %d)",
                           task.name, worker.stats.label, cause, deaths, self.engine.max_retries)
            self.report.retried[task.name] = deaths
            self.queue.appendleft(task)
        else:
            logger.error("%s: its worker died %d times; not retried again", task.name, deaths)
            self.results[task.name] = VideoResult(
                task.name, "failed", reason=f"its worker died {deaths} times (killed or out of memory): {cause}")
        if self.queue:
            self.start_worker()

    # -- the run ------------------------------------------------------------------------------

    def run(self, already_done: int, progress: bool) -> EngineReport:
        ray = self.ray
        workers, self.cpus, gpus = self.engine.plan(ray, len(self.tasks))
        self.actor_class = ray.remote(_VideoWorker).options(num_cpus=self.cpus, num_gpus=gpus, max_restarts=0)
        logger.info("ray engine: %d worker(s), %d CPU(s) (torch threads) and %g GPU(s) each; outputs %s",
                    workers, self.cpus, gpus, "gathered to this machine" if self.engine.gather
                    else f"written by the workers to {self.out_dir}")
        bar = _videos_bar(self.tasks, already_done, progress)
        try:
            if self.queue:
                for _ in range(workers):
                    self.start_worker()
            while self.queue or self.running_tasks():
                self.submit()
                if not self.pending:  # cannot happen (dead workers are replaced); never wait on nothing
                    self.start_worker()
                done, _ = ray.wait(list(self.pending), num_returns=1, timeout=0.5)
                for ref in done:
                    kind, worker, task, _ = self.pending.pop(ref)
                    if kind == "ready":
                        self.on_ready(ref, worker)
                        continue
                    self.on_result(ref, worker, task)
                    if task.name in self.results:  # not when it went back to the queue for a retry
                        bar.update(1)
                if not self.queue:  # nothing left to give: idle workers free their resources
                    for worker in self.idle:
                        self.kill(worker)
                    self.idle.clear()
                self.show(bar)
        except KeyboardInterrupt:
            if not self.interrupt():
                raise  # nothing had started: as a Ctrl-C while the local engine loads its models
            if self.queue and not any(result.status == "interrupted" for result in self.results.values()):
                # The videos in flight all finished as the workers were stopped: the run still ends
                # interrupted (exit 130), with the next video named.
                self.results[self.queue[0].name] = _interrupted(self.queue[0], 0.0, "not started")
        finally:
            bar.close()
            for worker in self.workers:
                self.kill(worker)
            self.report.setup_s = (self.setup_done or time.perf_counter()) - self.started
            self.report.wall_s = time.perf_counter() - self.started
        self.report.results = [self.results[task.name] for task in self.tasks if task.name in self.results]
        if any(result.status == "interrupted" for result in self.report.results):
            self.report.not_started = [task.name for task in self.tasks if task.name not in self.results]
        return self.report

    def running_tasks(self) -> int:
        return sum(kind == "run" for kind, *_ in self.pending.values())

    def show(self, bar: tqdm) -> None:
        statuses = [result.status for result in self.results.values()]
        running = self.running_tasks()
        seconds = time.perf_counter() - (self.setup_done or time.perf_counter())
        frames = sum(result.frames for result in self.results.values())
        bar.set_postfix_str(f"done {statuses.count('done') + statuses.count('truncated')}, "
                            f"failed {statuses.count('failed')}, running {running}, "
                            f"{frames / seconds if seconds > 0 else 0.0:.1f} frames/s", refresh=False)
        bar.refresh()

    def interrupt(self) -> bool:
        """Ctrl-C: kill every worker, wait until they are gone, mark their tasks interrupted (False: there were none)."""
        in_flight = [(ref, task, t0) for ref, (kind, _, task, t0) in self.pending.items() if kind == "run"]
        logger.error("Ctrl-C: stopping %d worker(s) (%d video(s) in flight)", len(self.workers), len(in_flight))
        for worker in self.workers:
            self.kill(worker)
        # A killed worker may still be finishing a write: return only once each has stopped.
        refs = [ref for ref, *_ in in_flight]
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=30)
        left = "nothing written" if self.engine.gather else "outputs left as .part files"
        for ref, task, t0 in in_flight:
            self.engine._set_running(task.name, None)
            self.results[task.name] = _interrupted(task, time.perf_counter() - t0, left)
            if self.engine.gather:
                continue  # Ctrl-C: nothing more is written here
            try:
                result, _ = self.ray.get(ref, timeout=0)
            except Exception:  # noqa: BLE001 - killed before it finished (the usual case): interrupted
                continue
            self.results[task.name] = result  # it finished (outputs renamed) just before the kill
            worker = self.pending[ref][1]
            worker.stats.add(result)
        self.pending.clear()
        return bool(in_flight)
