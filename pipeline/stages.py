"""Stage threads joined by bounded channels.

Each stage is a thread that takes a batch of jobs from its inbox, runs one
callable on the batch and puts the results in its outbox. All threads share one
stop `Event`; every blocking call waits at most `POLL_S` before looking at it,
and `Channel.abort()` wakes waiters at once, so a stop is seen within a fraction
of a second. The first exception in any stage is kept with the stage's name
(`StageErrors`) and stops everything; the pipeline re-raises it as
`PipelineError`.

End of stream is the `END` sentinel: a stage forwards it after the jobs before
it, then exits.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from core.types import Detections, Frame, TrackedPoses

logger = logging.getLogger(__name__)

POLL_S = 0.05


class _EndOfStream:
    def __repr__(self) -> str:
        return "END"


END = _EndOfStream()


class Stopped(Exception):
    """Raised inside a stage when the shared stop event is set while it waits."""


@dataclass
class Job:
    """One frame on its way through the stages (mutable; becomes a `FrameResult`).

    Attributes:
        frame: the input frame.
        started_s: `time.monotonic()` when capture began reading it, or the
            frame's capture timestamp for live sources (latency origin).
        detections: boxes for the pose stage; None on a frame whose boxes come
            from the previous frame's tracked poses (`detect_every > 1`).
        poses: tracked poses once the tracking stage has run.
        timings_s: seconds per stage.
        dropped_frames: frames the live source dropped before this one (total).
        untracked: poses before tracking (set by the pose stage).
        sequence: 0-based position among the frames this run took from its
            source (differs from `frame.index` when a live source dropped frames).
        result: the `FrameResult`, once built.
        queued_s: `time.perf_counter()` when the job was put in front of its
            next stage (gives the "wait_<stage>" timings).
        detected: the detector ran on this frame (False on frames whose boxes
            follow the tracked poses).
    """

    frame: Frame
    started_s: float
    sequence: int = 0
    detections: Detections | None = None
    untracked: Any = None
    poses: TrackedPoses | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    dropped_frames: int = 0
    result: Any = None
    queued_s: float = 0.0
    detected: bool = False


class Channel:
    """A bounded FIFO between two threads, with batch reads and an abort switch.

    `wait_for_demand` lets a live capture read the camera only when the next
    stage is idle and waiting, so the frame it sends is as fresh as possible.
    """

    def __init__(self, maxsize: int, name: str = "") -> None:
        if maxsize < 1:
            raise ValueError(f"channel {name!r}: maxsize must be >= 1, got {maxsize}")
        self.name = name
        self.maxsize = maxsize
        self._items: collections.deque = collections.deque()
        self._condition = threading.Condition()
        self._waiting_getters = 0
        self._aborted = False

    def __len__(self) -> int:
        with self._condition:
            return len(self._items)

    def abort(self) -> None:
        """Wake every waiter; all later waits raise `Stopped`."""
        with self._condition:
            self._aborted = True
            self._condition.notify_all()

    def _wait(self, ready: Callable[[], bool], stop: threading.Event) -> None:
        # Stop first: after a stop no item moves on, even when one is ready, so a
        # stage never starts another model call on a frame queued before the stop.
        while True:
            if self._aborted or stop.is_set():
                raise Stopped
            if ready():
                return
            self._condition.wait(POLL_S)

    def put(self, item: Any, stop: threading.Event) -> None:
        """Append, waiting while the channel is full (never drops)."""
        with self._condition:
            self._wait(lambda: len(self._items) < self.maxsize, stop)
            self._items.append(item)
            self._condition.notify_all()

    def put_end(self, stop: threading.Event) -> None:
        self.put(END, stop)

    def get_batch(self, max_items: int, stop: threading.Event,
                  accept: Callable[[list, Any], bool] | None = None) -> list:
        """Wait for at least one item; return up to `max_items` already queued, stopping at `END`.

        `accept(batch, item)`: whether a queued item may join the batch so far
        (the first item always does; `END` always does).
        """
        with self._condition:
            self._waiting_getters += 1
            self._condition.notify_all()
            try:
                self._wait(lambda: bool(self._items), stop)
            finally:
                self._waiting_getters -= 1
            batch = []
            while self._items and len(batch) < max_items:
                if accept is not None and batch and self._items[0] is not END and not accept(batch, self._items[0]):
                    break
                item = self._items.popleft()
                batch.append(item)
                if item is END:
                    break
            self._condition.notify_all()
            return batch

    def wait_for_demand(self, stop: threading.Event) -> None:
        """Wait until the channel is empty and its consumer is blocked waiting for an item."""
        with self._condition:
            self._wait(lambda: not self._items and self._waiting_getters > 0, stop)


class StageErrors:
    """The first failure of any stage, with the stage's name. Setting it sets the stop event."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop_event = stop
        self._lock = threading.Lock()
        self.stage: str | None = None
        self.error: BaseException | None = None

    def report(self, stage: str, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.stage, self.error = stage, error
                logger.debug("stage %s failed", stage, exc_info=error)
        self._stop_event.set()


class StageThread(threading.Thread):
    """Runs `work(jobs) -> None` on batches from `inbox`, forwarding each job to `outbox`.

    `work` fills in fields of the jobs it is given (and their timings); it runs
    in this thread only, so the objects it holds (a model, a tracker's state,
    an open file) are used by one thread.

    Args:
        name: the stage's name, used in errors and timings.
        work: the stage's job; called with 1..`batch_max` jobs.
        batch_max: how many queued jobs one call may take.
        accept: `accept(batch, job)`, whether a further queued job joins the
            batch (see `Channel.get_batch`); None takes up to `batch_max`.
        on_finish: called once in this thread when it ends, with True after
            `END` went through (before `END` is passed on: sinks rename their
            files there) and False when it stopped early or failed.
    """

    def __init__(self, name: str, work: Callable[[list[Job]], None], inbox: Channel, outbox: Channel,
                 stop: threading.Event, errors: StageErrors, batch_max: int = 1,
                 accept: Callable[[list, Any], bool] | None = None,
                 on_finish: Callable[[bool], None] | None = None) -> None:
        super().__init__(name=f"stage-{name}", daemon=True)
        self.stage = name
        self._work = work
        self._inbox = inbox
        self._outbox = outbox
        self._stop_event = stop
        self._errors = errors
        self._batch_max = max(1, int(batch_max))
        self._accept = accept
        self._on_finish = on_finish
        self._finished = False

    def _finish(self, completed: bool) -> None:
        if self._on_finish is not None and not self._finished:
            self._finished = True
            self._on_finish(completed)

    def run(self) -> None:
        try:
            while True:
                batch = self._inbox.get_batch(self._batch_max, self._stop_event, self._accept)
                at_end = batch[-1] is END
                jobs = batch[:-1] if at_end else batch
                if jobs:
                    taken_s = time.perf_counter()
                    for job in jobs:
                        if job.queued_s > 0:
                            job.timings_s[f"wait_{self.stage}"] = max(0.0, taken_s - job.queued_s)
                    self._work(jobs)
                    for job in jobs:
                        job.queued_s = time.perf_counter()
                        self._outbox.put(job, self._stop_event)
                if at_end:
                    self._finish(True)
                    self._outbox.put_end(self._stop_event)
                    return
        except Stopped:
            pass
        except BaseException as error:  # noqa: BLE001 - reported with the stage name, re-raised by the pipeline
            self._errors.report(self.stage, error)
        finally:
            try:
                self._finish(False)
            except BaseException as error:  # noqa: BLE001
                self._errors.report(self.stage, error)


CPU_WAIT_PREFIX = "wait_cpu_"  # timings_s key prefix: time a stage waited for the models' turn on the CPU


def timed(name: str, work: Callable[[list[Job]], None]) -> Callable[[list[Job]], None]:
    """Wrap a batch function so each job's `timings_s[name]` is its share of the batch time.

    Time the work spent waiting for the CPU (`CPU_WAIT_PREFIX + name`, set by the work) is not the stage's own.
    """

    def run(jobs: list[Job]) -> None:
        started = time.perf_counter()
        work(jobs)
        share = (time.perf_counter() - started) / len(jobs)
        for job in jobs:
            job.timings_s[name] = share - job.timings_s.get(CPU_WAIT_PREFIX + name, 0.0)

    return run


def boxes_from_keypoints(poses: TrackedPoses, margin: float = 0.1, min_score: float = 0.2) -> Detections:
    """Person boxes for the next frame from this frame's tracked poses (`detect_every > 1`).

    The box of each pose's keypoints scoring at least `min_score` (all of them
    when fewer than two do), widened by `margin` of its size on every side,
    because joints sit inside the body outline. Scores are the mean keypoint score.

    Returns: Detections with (N, 4) float32 xyxy pixels.
    """
    if len(poses) == 0:
        return Detections.empty()
    boxes, scores = [], []
    for keypoints, keypoint_scores in zip(poses.keypoints, poses.scores):
        confident = keypoint_scores >= min_score
        points = keypoints[confident] if confident.sum() >= 2 else keypoints
        low, high = points.min(axis=0), points.max(axis=0)
        pad = (high - low) * margin
        boxes.append(np.concatenate([low - pad, high + pad]))
        scores.append(float(np.clip(keypoint_scores.mean(), 0.0, 1.0)))
    return Detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32))
