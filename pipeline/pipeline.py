"""The threaded pipeline: capture -> detection -> pose -> tracking -> sinks.

    for result in Pipeline("video.mp4", detector, estimator, tracker).run():
        print(result.frame.index, result.poses.track_ids, result.timings_s)

Every stage runs in its own thread; bounded channels join them. The models and
the tracker are each used by one thread only.

Policies:

* files (video, image folder): every frame, in order; when a stage is slower,
  the channels fill up and capture waits.
* live (camera, stream; `live=True`): the source keeps only the newest frame,
  and capture takes one only when the detection stage is idle and fewer than
  `max_in_flight` frames are between capture and the caller. That limit adapts
  to the measured stage times: as many frames as keep the slowest stage busy,
  but never so many that a frame waits longer than a quarter of the whole
  pipeline's time in front of it. So results stay about one frame behind the
  camera, and the pipeline still overlaps stages when they are balanced.

Stopping: the end of the source, `stop()`, closing the generator (`break`,
Ctrl-C) or an exception in any stage stops every thread within about a second
(all waits use short timeouts; `run()` returns only after a model call in
progress has finished). Sinks
are closed in their own thread: renamed to their final names only when every
frame went through, else left under their temporary names. An exception is
re-raised from `run()` as `PipelineError` naming the stage.

`detect_every=N` runs the detector on every N-th frame only; the frames in
between reuse the boxes of the previous frame's tracked poses, so a person who
enters is found at the next detector run, within N frames. Those frames wait
for the tracker's result of the frame before them, so with N > 1 the pose stage
takes one frame at a time. The default is every frame for files (every frame
is detected unless asked) and `LIVE_DETECT_EVERY` for live sources, where the
detector's cost would otherwise cap the frame rate. Detection runs in its own
thread, so the detector works on frame t+1 while the pose stage works on frame t.

When the detector and the pose network both run on the CPU, only one of them
computes at a time (`one_model_at_a_time`): each already uses every core, and
overlapped, PyTorch's two thread teams fight over them. On 2 cores with SSDlite
and eager HRNet-W32 (3 people, detection every frame) the pipeline ran 0.64 fps
overlapped and 1.01 fps taking turns; with ONNX Runtime's pose network, which
does not spin, 1.36 and 1.33 (benchmarks/end_to_end.py). The time a call waits for its turn is
reported as "wait_cpu_<stage>", not as the stage's own time.

Timings: each `FrameResult.timings_s` holds the seconds of every stage for
that frame, the pose stage split into "crop", "network" and "decode" when the
estimator reports them (`last_timings_s`), and "wait_<stage>", the time the
frame queued in front of that stage. `profile=PipelineProfile()` sums them
over the run (`--profile`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np

from pipeline.capture import SourceTimeout, open_source
from pipeline.stages import (
    CPU_WAIT_PREFIX,
    END,
    POLL_S,
    Channel,
    Job,
    StageErrors,
    StageThread,
    Stopped,
    boxes_from_keypoints,
    timed,
)
from core.types import Detections, FrameResult, Poses, TrackedPoses

logger = logging.getLogger(__name__)

STAGE_NAMES = ("capture", "detection", "pose", "tracking", "sinks")
JOIN_TIMEOUT_S = 1.0
LIVE_DETECT_EVERY = 5  # live sources: the detector on every 5th frame (boxes follow the poses in between)
POSE_PARTS = ("crop", "network", "decode")  # the estimator's own split of the pose stage


class PipelineError(RuntimeError):
    """A stage failed. `stage` is its name ("capture", "detection", ...); the cause is chained."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"pipeline stage '{stage}' failed: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


class _InFlightLimit:
    """Counts frames between capture and the caller; capture waits while `limit` are out."""

    def __init__(self, limit: int = 1) -> None:
        self._condition = threading.Condition()
        self.limit = limit
        self.in_flight = 0

    def acquire(self, stop: threading.Event) -> None:
        with self._condition:
            while self.in_flight >= self.limit:
                if stop.is_set():
                    raise Stopped
                self._condition.wait(POLL_S)
            self.in_flight += 1

    def release(self) -> None:
        with self._condition:
            self.in_flight = max(0, self.in_flight - 1)
            self._condition.notify_all()

    def set_limit(self, limit: int) -> None:
        with self._condition:
            self.limit = max(1, limit)
            self._condition.notify_all()


def live_in_flight_limit(stage_times_s: Sequence[float]) -> int:
    """Frames to keep in flight in live mode, given each stage's time per frame.

    With k frames in flight and a slowest stage of time b in a pipeline of total
    time s, each frame waits about max(0, k*b - s) in front of the slowest
    stage. k = ceil(s/b) is enough to keep that stage busy; we take at most
    floor(1.25 s/b), so the wait stays under s/4.
    """
    total, slowest = float(sum(stage_times_s)), float(max(stage_times_s, default=0.0))
    if slowest <= 0:
        return 1
    ratio = total / slowest
    return max(1, min(math.ceil(ratio - 1e-9), math.floor(1.25 * ratio)))


class _TrackedBoxes:
    """The tracking stage's latest output, for frames that skip the detector (`detect_every`)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sequence = -1
        self._poses: TrackedPoses | None = None

    def publish(self, sequence: int, poses: TrackedPoses) -> None:
        with self._condition:
            self._sequence, self._poses = sequence, poses
            self._condition.notify_all()

    def wait_for(self, sequence: int, stop: threading.Event) -> TrackedPoses | None:
        with self._condition:
            while self._sequence < sequence:
                if stop.is_set():
                    raise Stopped
                self._condition.wait(POLL_S)
            return self._poses


def _tracked(tracker, poses: Poses, image: np.ndarray) -> TrackedPoses:
    """Run the tracker on one frame's poses: its `TrackingResult` gives the output
    poses, which may be smoothed or include flow-recovered people (detection_index -1)."""
    count = len(poses)
    if tracker is None:
        return TrackedPoses(poses.keypoints, poses.scores, poses.boxes, poses.box_scores,
                            np.full(count, -1, np.int64), np.arange(count, dtype=np.int64))
    output = tracker.update(poses.keypoints_with_scores(), boxes=poses.boxes, scores=poses.box_scores, frame=image)
    if len(output.ids) != count:
        raise ValueError(f"tracker returned {len(output.ids)} IDs for {count} poses")
    keypoints = np.asarray(output.keypoints, np.float32).reshape(-1, poses.num_keypoints, 3)
    return TrackedPoses(keypoints[..., :2], keypoints[..., 2], output.boxes, output.scores,
                        output.track_ids, output.detection_index)


def _on_cpu(model) -> bool:
    """True when `model` (a detector or an estimator) computes on the CPU; False for GPUs and box files."""
    device = getattr(model, "device", None)
    return device is not None and str(device).startswith("cpu")


class Pipeline:
    """Threaded capture -> detection -> pose -> tracking -> sinks, streaming `FrameResult`s.

    Args:
        source: a source object (`pipeline.capture`) or a spec for
            `open_source`: camera index, video file, image folder, URL. The
            pipeline closes it when `run()` ends.
        detector: `detector(frames: list[Frame]) -> list[Detections]`.
        estimator: `estimator.estimate_many(images, boxes_per_image)` ->
            list of ((N, K, 2) float32 px, (N, K) float32), one batch for all crops.
        tracker: `tracker.update(keypoints (N, K, 3), boxes=, scores=, frame=)`
            returning a `tracker.TrackingResult`; None gives IDs of -1.
        live: the frame policy; None picks it from the source.
        queue_size: capacity of each channel between stages (file mode).
        pose_batch_frames: most frames whose crops go into one pose batch.
            None (the default): 1 live, where batching only adds latency; for
            files up to 4 queued frames, and only while their crops fit one
            network call (`estimator.batch_size`), where merging helps.
        detection_batch_frames: most frames per detector call.
        detect_every: run the detector on every N-th frame only; None: 1 for
            files, `LIVE_DETECT_EVERY` for live sources.
        sinks: objects with `write(FrameResult)` and `close(complete: bool)`,
            run in their own thread.
        profile: a `pipeline.profile.PipelineProfile` that gets every frame's
            timings (after its sinks wrote it, so a sink holding the same
            profile sees every frame by the time it is closed).
        max_frames: stop after this many frames.
        max_in_flight: live mode: fixed number of frames in flight instead of
            the adaptive limit.
        exact_file_boxes: crop from the boxes exactly as a box file gives
            them (`Detections.boxes_xywh`, float64 xywh, passed to
            `estimate_many(..., box_format="xywh")`) when every frame of a pose
            batch has them: the evaluators use it to match the official numbers.
        one_model_at_a_time: run the detector and the pose network one at a
            time; None (the default): when both are on the CPU.
    """

    def __init__(self, source, detector, estimator, tracker=None, *, live: bool | None = None,
                 queue_size: int = 4, pose_batch_frames: int | None = None, detection_batch_frames: int = 1,
                 detect_every: int | None = None, sinks: Sequence = (), max_frames: int | None = None,
                 max_in_flight: int | None = None, profile=None, exact_file_boxes: bool = False,
                 one_model_at_a_time: bool | None = None) -> None:
        if detect_every is not None and detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if isinstance(source, (str, int)) or hasattr(source, "__fspath__"):
            source = open_source(source, live=live, max_frames=max_frames)
        self.source = source
        self.live = bool(source.live) if live is None else bool(live)
        self.detector = detector
        self.estimator = estimator
        self.tracker = tracker
        if detect_every is None:
            detect_every = LIVE_DETECT_EVERY if self.live else 1
        self.detect_every = int(detect_every)
        self.sinks = list(sinks)
        self.profile = profile
        self.max_frames = max_frames
        self.exact_file_boxes = bool(exact_file_boxes)
        self._fill_calls = pose_batch_frames is None
        if pose_batch_frames is None:
            pose_batch_frames = 1 if self.live else 4
        # Frames that skip the detector need the tracker's result of the frame before.
        self.pose_batch_frames = 1 if self.detect_every > 1 else max(1, int(pose_batch_frames))
        self.detection_batch_frames = max(1, int(detection_batch_frames))
        channel_size = 1 if self.live else int(queue_size)
        self._fixed_in_flight = max_in_flight
        self._limit = _InFlightLimit(max_in_flight or 1) if self.live else None
        self._stage_time_averages: dict[str, float] = {}

        if one_model_at_a_time is None:
            one_model_at_a_time = _on_cpu(detector) and _on_cpu(estimator)
        self._model_turn = threading.Lock() if one_model_at_a_time else None

        self._stop = threading.Event()
        self._errors = StageErrors(self._stop)
        self._tracked_boxes = _TrackedBoxes()
        self._detect_counter = 0
        self._num_keypoints = int(getattr(estimator, "num_keypoints", 17))

        names = ["detection", "pose", "tracking"] + (["sinks"] if self.sinks else [])
        self._channels = [Channel(channel_size, name) for name in names] + [Channel(channel_size, "results")]
        works = {"detection": timed("detection", self._detect), "pose": timed("pose", self._estimate),
                 "tracking": timed("tracking", self._track), "sinks": self._write}
        batch = {"detection": self.detection_batch_frames, "pose": self.pose_batch_frames}
        self._threads: list[threading.Thread] = [
            threading.Thread(target=self._capture_loop, name="stage-capture", daemon=True)]
        for position, name in enumerate(names):
            self._threads.append(StageThread(
                name, works[name], self._channels[position], self._channels[position + 1], self._stop,
                self._errors, batch_max=batch.get(name, 1), accept=self._fits_one_call if name == "pose" and self._fill_calls else None,
                on_finish=self._close_sinks if name == "sinks" else None))
        self._started = False
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        self.frames_out = 0

    # -- stage bodies (each runs in its own thread) --------------------------------

    def _capture_loop(self) -> None:
        first = self._channels[0]
        sequence = 0
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and sequence >= self.max_frames:
                    break
                if self._limit is not None:
                    self._limit.acquire(self._stop)
                    first.wait_for_demand(self._stop)
                started = time.monotonic()
                try:
                    frame = self.source.read(timeout_s=4 * POLL_S)
                except SourceTimeout:
                    if self._limit is not None:
                        self._limit.release()
                    continue
                if frame is None:
                    break
                job = Job(frame=frame, started_s=frame.timestamp_s if self.live else started, sequence=sequence,
                          queued_s=time.perf_counter())
                job.timings_s["capture"] = float(getattr(self.source, "last_read_s", time.monotonic() - started))
                job.dropped_frames = int(getattr(self.source, "dropped_frames", 0))
                first.put(job, self._stop)
                sequence += 1
            first.put_end(self._stop)
        except Stopped:
            pass
        except BaseException as error:  # noqa: BLE001 - reported with the stage name, re-raised by run()
            self._errors.report("capture", error)
        finally:
            try:
                self.source.close()
            except Exception as error:  # noqa: BLE001
                logger.warning("closing %s failed: %s", getattr(self.source, "name", "source"), error)

    def _detect(self, jobs: list[Job]) -> None:
        to_detect = []
        for job in jobs:
            if self._detect_counter % self.detect_every == 0:
                to_detect.append(job)
            self._detect_counter += 1
        if not to_detect:
            return
        with self._turn(jobs, "detection"):
            detections = self.detector([job.frame for job in to_detect])
        if len(detections) != len(to_detect):
            raise ValueError(f"detector returned {len(detections)} results for {len(to_detect)} frames")
        for job, found in zip(to_detect, detections):
            if not isinstance(found, Detections):
                raise TypeError(f"detector must return Detections per frame, got {type(found).__name__}")
            job.detections = found
            job.detected = True

    def _estimate(self, jobs: list[Job]) -> None:
        for job in jobs:
            if job.detections is None:  # a frame between detector runs
                previous = self._tracked_boxes.wait_for(job.sequence - 1, self._stop)
                job.detections = boxes_from_keypoints(previous) if previous is not None else Detections.empty()
        with_people = [job for job in jobs if len(job.detections)]
        if with_people:
            images = [job.frame.image for job in with_people]
            with self._turn(jobs, "pose"):
                if self.exact_file_boxes and all(job.detections.boxes_xywh is not None for job in with_people):
                    # Boxes from a file: crop from its exact numbers, as the official evaluation does.
                    results = self.estimator.estimate_many(images, [job.detections.boxes_xywh for job in with_people],
                                                           box_format="xywh")
                else:
                    results = self.estimator.estimate_many(images, [job.detections.boxes for job in with_people])
            if len(results) != len(with_people):
                raise ValueError(f"pose estimator returned {len(results)} results for {len(with_people)} frames")
            for job, (keypoints, scores) in zip(with_people, results):
                job.untracked = Poses(keypoints, scores, job.detections.boxes, job.detections.scores)
            self._share_pose_parts(with_people)
        for job in jobs:
            if job.untracked is None:
                job.untracked = Poses.empty(self._num_keypoints)

    @contextmanager
    def _turn(self, jobs: list[Job], stage: str) -> Iterator[None]:
        """The models' turn for `stage` (see `one_model_at_a_time`); each job gets its share of the wait."""
        if self._model_turn is None:
            yield
            return
        started = time.perf_counter()
        with self._model_turn:
            waited = (time.perf_counter() - started) / len(jobs)
            for job in jobs:
                job.timings_s[f"{CPU_WAIT_PREFIX}{stage}"] = waited
            yield

    def _fits_one_call(self, batch: list[Job], job: Job) -> bool:
        """Batch policy: a queued frame joins a pose batch only while all their crops fit one network call.

        Merging frames helps only to fill a call (`estimator.batch_size` crops):
        once a frame has that many people alone, another frame in the same
        call adds latency and no throughput.
        """
        crops_per_call = getattr(self.estimator, "batch_size", None)
        if crops_per_call is None:
            return True
        crops = sum(len(item.detections) for item in batch if item.detections is not None)
        return job.detections is not None and crops + len(job.detections) <= int(crops_per_call)

    def _share_pose_parts(self, jobs: list[Job]) -> None:
        """Split the estimator's crop/network/decode seconds of one call among its frames, by crop count."""
        parts = getattr(self.estimator, "last_timings_s", None)
        if not isinstance(parts, dict):
            return
        crops = np.array([len(job.detections) for job in jobs], np.float64)
        shares = crops / crops.sum()
        for job, share in zip(jobs, shares):
            for name in POSE_PARTS:
                if name in parts:
                    job.timings_s[name] = float(parts[name]) * float(share)

    def _track(self, jobs: list[Job]) -> None:
        for job in jobs:
            job.poses = _tracked(self.tracker, job.untracked, job.frame.image)
            self._tracked_boxes.publish(job.sequence, job.poses)

    def _write(self, jobs: list[Job]) -> None:
        for job in jobs:
            started = time.perf_counter()
            result = self._result(job)
            for sink in self.sinks:
                sink.write(result)
            job.timings_s["sinks"] = time.perf_counter() - started
            self._add_to_profile(job)

    def _add_to_profile(self, job: Job) -> None:
        if self.profile is not None:
            self.profile.add(job.timings_s, detected=job.detected)

    def _close_sinks(self, complete: bool) -> None:
        failures = []
        for sink in self.sinks:
            try:
                sink.close(complete)
            except Exception as error:  # noqa: BLE001 - close every sink, then report the first failure
                failures.append(error)
        if failures:
            raise failures[0]

    @staticmethod
    def _result(job: Job) -> FrameResult:
        if job.result is None:
            job.result = FrameResult(frame=job.frame, detections=job.detections, poses=job.poses,
                                     timings_s=job.timings_s, dropped_frames=job.dropped_frames)
        return job.result

    # -- control ------------------------------------------------------------------

    def _update_live_limit(self, timings_s: dict[str, float]) -> None:
        for name in STAGE_NAMES[1:]:
            if name in timings_s:
                previous = self._stage_time_averages.get(name, timings_s[name])
                self._stage_time_averages[name] = 0.8 * previous + 0.2 * timings_s[name]
        if self._fixed_in_flight is None:
            self._limit.set_limit(live_in_flight_limit(list(self._stage_time_averages.values())))

    def run(self) -> Iterator[FrameResult]:
        """Start the threads and yield one `FrameResult` per frame, in frame order.

        `result.timings_s` holds seconds per stage ("capture", "detection",
        "pose", "tracking", "sinks" when sinks are given) and "latency", from
        capture (the camera timestamp for live sources) to the result.
        Raises `PipelineError` when a stage failed.
        """
        if self._started:
            raise RuntimeError("a Pipeline runs once; make a new one for another run")
        self._started = True
        if self.profile is not None:
            self.profile.start()
        for thread in self._threads:
            thread.start()
        results = self._channels[-1]
        try:
            while True:
                try:
                    item = results.get_batch(1, self._stop)[0]
                except Stopped:
                    break
                if item is END:
                    break
                result = self._result(item)
                result.timings_s["latency"] = time.monotonic() - item.started_s
                if not self.sinks:
                    self._add_to_profile(item)
                if self._limit is not None:
                    self._limit.release()
                    self._update_live_limit(result.timings_s)
                self.frames_out += 1
                yield result
        finally:
            self._shutdown()
        if self._errors.error is not None:
            raise PipelineError(self._errors.stage, self._errors.error) from self._errors.error

    def stop(self) -> None:
        """Ask every thread to stop (any thread may call it); `run()` then ends."""
        self._stop.set()
        for channel in self._channels:
            channel.abort()

    def _shutdown(self) -> None:
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
        self.stop()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        hanging = [thread for thread in self._threads if thread.is_alive() and thread is not threading.current_thread()]
        if hanging:
            # Only a model, sink or source call still running can hold a thread this
            # long (every wait polls the stop event). Wait for it: returning earlier
            # would let the next video share the models and tracker with it, and an
            # interpreter exiting under a running torch call aborts the process.
            # (The GUI closes the run on a helper thread, so it is not held up.)
            logger.warning("threads still finishing a call after %.1f s, waiting for them: %s", JOIN_TIMEOUT_S,
                           ", ".join(thread.name for thread in hanging))
            for thread in hanging:
                thread.join()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        if self._started:
            self._shutdown()
        else:
            self.stop()
            self.source.close()
