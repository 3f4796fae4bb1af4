"""The worker thread: runs the pipeline, draws each frame and hands it to the window.

The GUI thread only paints. Everything else happens here, per frame:
pull the next `FrameResult` from the pipeline (capture, detection, pose and
tracking run in the pipeline), apply the live settings, draw the skeletons
(timed as the "drawing" stage), record, and emit a `VideoFrame`.

The pipeline is reached through one seam, `PipelineFactory`: the default
builds `pipeline.Pipeline`; tests may pass any callable that returns an
object with `run()` (an iterator of `FrameResult`) and `stop()`.

The pipeline gets proxies instead of the models themselves, so a new pose
model or a rebuilt tracker is swapped in between two frames without
rebuilding the pipeline (the old model keeps running until then). The
detector's score threshold is handed over the same way: the detection thread
applies it between two of its calls, so a call never sees it change.

Stopping never waits on the GUI thread: `stop()` returns at once, and the
thread ends by itself once a model call in flight has returned (the window
keeps the QThread alive until `finished`; a running QThread is never
destroyed). A stream still being opened gives up at once (`app.sources`).

Seeking (`seek`, files and frame folders) stays in this thread and in the
open source: the worker stops the running pipeline (its frames in flight
belong to the old position), moves the source to the frame asked for
(`seek` of `pipeline.capture`'s file sources; the file is reopened there only
when the container cannot seek exactly), and runs a new pipeline with a new
tracker, since IDs after a jump are a fresh start. The worker owns the open
source: pipelines get it through `BorrowedSource`, so stopping one leaves
the file open. Reopening cost 0.3-0.7 s idle and 3-5 s under load (a new
thread, the file opened and its first frame decoded again, after the old
worker had finished).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal
from PyQt6.QtGui import QImage

from app.errors import explain_run_error
from app.model_loader import LoadedModels
from app.playback import PacedSource
from app.recording import VideoRecorder
from app.settings import SharedSettings, ViewSettings
from app.sources import open_source_stoppable
from app.video_view import image_from_bgr
from core.types import FrameResult, TrackedPoses
from pipeline.pipeline import Pipeline
from tracker import PoseTracker

logger = logging.getLogger(__name__)

STAGES = ("capture", "detection", "pose", "tracking", "drawing")
# How long blocking waits last before the stop event is checked again.
_POLL_S = 0.05


class RunningPipeline(Protocol):
    def run(self) -> Iterator[FrameResult]: ...
    def stop(self) -> None: ...


# (opened source (`pipeline.capture.Source`), detector, estimator, tracker) -> a pipeline ready to run.
PipelineFactory = Callable[[Any, Any, Any, Any], RunningPipeline]
# tracker options -> a new tracker (`tracker.PoseTracker(**options)`).
TrackerFactory = Callable[..., Any]


def default_pipeline_factory(source: Any, detector: Any, estimator: Any, tracker: Any) -> RunningPipeline:
    # One-slot channels and single-frame pose batches: the window changes
    # thresholds, trackers and models live, and every frame already in flight
    # shows the old settings, so the GUI keeps as few frames in flight as the
    # stages need to run in parallel.
    return Pipeline(source, detector=detector, estimator=estimator, tracker=tracker,
                    queue_size=1, pose_batch_frames=1)


def default_tracker_factory(**options: Any) -> Any:
    return PoseTracker(**options)


class BorrowedSource:
    """The worker's open source as a pipeline sees it: all of it except `close`.

    A pipeline closes its source when it stops; a seek stops the pipeline but
    goes on reading the same file, so the worker closes the source itself.
    """

    def __init__(self, source: Any) -> None:
        self._source = source

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def close(self) -> None:
        pass


class Swappable:
    """Stands in for a model or tracker; `swap()` replaces what it forwards to.

    Calls and attribute reads go to the current target. Replacing the
    reference is atomic in Python, so the pipeline's threads see either the
    old or the new object, never a mix.
    """

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    @property
    def target(self) -> Any:
        return object.__getattribute__(self, "_target")

    def swap(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_target"), name)


class DetectorProxy(Swappable):
    """The swappable detector, with the live score threshold applied by the thread that calls it.

    The GUI only records the wanted threshold (`set_score_threshold`); the
    detection stage sets the detector's `score_threshold` just before its next
    call, so the value never changes under a call in progress and only one
    thread ever writes the detector's attributes. (A network detector also cut
    its boxes at the threshold it was built with, so a lower live value shows
    no more boxes than that.)
    """

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        object.__setattr__(self, "_score_threshold", None)

    def set_score_threshold(self, value: float) -> None:
        # One reference assignment: the detection thread reads the old or the new float.
        object.__setattr__(self, "_score_threshold", float(value))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        detector = self.target
        wanted = object.__getattribute__(self, "_score_threshold")
        if wanted is not None and getattr(detector, "score_threshold", wanted) != wanted:
            detector.score_threshold = wanted
        return detector(*args, **kwargs)


@dataclass(frozen=True)
class VideoFrame:
    """One annotated frame on its way to the window.

    Attributes:
        image: the annotated frame as a QImage that owns its pixels (a copy
            of `buffer`, so it stays valid whatever becomes of the array).
        buffer: (H, W, 3) uint8 BGR annotated frame, owned by this object
            (the worker never writes to it again; recording and tests read it).
        result: the pipeline's result for the frame (poses in frame pixels).
        shown: the poses that passed the live thresholds (what was drawn).
        timings_ms: milliseconds per stage, `STAGES` order, for this frame,
            and "latency": capture to display, without time spent paused.
        fps: end-to-end frames per second, smoothed over recent frames.
        device: where the models run.
        redraw: True when this is the frame on screen drawn again with new
            display settings while paused (not a new frame).
        seeks: how many seeks the worker had carried out when it computed the
            frame; one with fewer than the window asked for (`PipelineWorker.
            seeks_requested`) is from before the last seek.
    """

    image: QImage
    buffer: np.ndarray
    result: FrameResult
    shown: TrackedPoses
    timings_ms: dict[str, float] = field(default_factory=dict)
    fps: float = 0.0
    device: str = ""
    redraw: bool = False
    seeks: int = 0

    @property
    def index(self) -> int:
        return self.result.frame.index


def filter_poses(poses: TrackedPoses, detection_threshold: float) -> TrackedPoses:
    """The poses whose box score reaches `detection_threshold`."""
    keep = poses.box_scores >= detection_threshold
    if keep.all():
        return poses
    return poses[keep]


class FrameAnnotator:
    """Draws skeletons, IDs, optional boxes and trails through `pipeline.drawing`.

    Owns the trail history, so one annotator belongs to one video.
    """

    def __init__(self) -> None:
        from pipeline import drawing  # noqa: PLC0415 - supervision (about 1.5 s): with the first drawn frame

        self._drawing = drawing
        self._trails = drawing.Trails()

    def reset(self) -> None:
        self._trails = self._drawing.Trails(max_length=self._trails.max_length)

    def __call__(self, image: np.ndarray, poses: TrackedPoses, skeleton: Any, settings: ViewSettings) -> np.ndarray:
        if self._trails.max_length != settings.trail_length:
            self._trails = self._drawing.Trails(max_length=settings.trail_length)
        # Trails follow every track, even while hidden, so they are whole when switched on.
        anchors = self._drawing.trail_anchors(poses.keypoints, poses.scores, poses.boxes,
                                              keypoint_threshold=settings.keypoint_threshold)
        self._trails.update(poses.track_ids, anchors)
        return self._drawing.draw_poses(
            image,
            poses.keypoints,
            poses.scores,
            (skeleton or ()) if settings.show_skeletons else (),
            track_ids=poses.track_ids,
            boxes=poses.boxes,
            keypoint_threshold=settings.keypoint_threshold,
            show_boxes=settings.show_boxes,
            show_labels=settings.show_labels,
            show_keypoints=settings.show_keypoints,
            highlight_id=settings.highlight_track_id,
            trails=self._trails if settings.show_trails else None,
        )


class _FpsMeter:
    """Frames per second from the interval between frames, exponentially smoothed."""

    def __init__(self, smoothing: float = 0.9) -> None:
        self._smoothing = smoothing
        self._last: float | None = None
        self._interval_s: float | None = None

    def tick(self) -> float:
        now = time.perf_counter()
        if self._last is not None:
            interval = now - self._last
            self._interval_s = interval if self._interval_s is None else (
                self._smoothing * self._interval_s + (1 - self._smoothing) * interval)
        self._last = now
        return 1.0 / self._interval_s if self._interval_s else 0.0

    def reset(self) -> None:
        """Forget the last frame time (after a pause, so the pause is not counted)."""
        self._last = None


class _PauseLog:
    """When the video was paused (monotonic seconds), so latency can leave the paused time out."""

    def __init__(self, paused: bool, keep: int = 32) -> None:
        self._intervals: list[tuple[float, float]] = []
        self._since: float | None = time.monotonic() if paused else None
        self._keep = keep

    def set_paused(self, paused: bool) -> None:
        now = time.monotonic()
        if paused and self._since is None:
            self._since = now
        elif not paused and self._since is not None:
            self._intervals = [*self._intervals[-self._keep + 1:], (self._since, now)]
            self._since = None

    def paused_s(self, start: float, end: float) -> float:
        """Seconds of [start, end] spent paused."""
        intervals = self._intervals if self._since is None else [*self._intervals, (self._since, end)]
        return sum(max(0.0, min(end, stop) - max(start, begin)) for begin, stop in intervals)


class PipelineWorker(QThread):
    """Runs one source through the pipeline on its own thread.

    Signals:
        frame_ready(VideoFrame): a new annotated frame. The worker waits for
            `frame_shown()` before sending the next one, so frames never pile
            up in the GUI's event queue.
        failed(str): the run stopped with an error (a message for the person).
        source_ended(): the file or stream has no more frames.
        recording_changed(bool, str): recording started (True, path) or
            stopped (False, path of the finished file, or an error message).

    Args:
        start_index: the first frame of a file or folder.
        start_paused: pause after the first frame, which is shown anyway, so
            the source on screen is always the one just opened.
        speed: files play at their frame rate times this (`app.playback`);
            None: as fast as the models allow. Live sources ignore it.
    """

    frame_ready = pyqtSignal(object)
    failed = pyqtSignal(str)
    source_ended = pyqtSignal()
    recording_changed = pyqtSignal(bool, str)

    def __init__(
        self,
        source: str,
        models: LoadedModels,
        settings: SharedSettings,
        *,
        pipeline_factory: PipelineFactory = default_pipeline_factory,
        tracker_factory: TrackerFactory = default_tracker_factory,
        annotator: Callable[[np.ndarray, TrackedPoses, Any, ViewSettings], np.ndarray] | None = None,
        start_index: int = 0,
        start_paused: bool = False,
        speed: float | None = 1.0,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self.source = source
        self.start_index = int(start_index)
        self._settings = settings
        self._pipeline_factory = pipeline_factory
        self._tracker_factory = tracker_factory
        self._annotator = annotator
        self._device = models.device
        self._detector = DetectorProxy(models.detector)
        self._estimator = Swappable(models.estimator)
        self._tracker: Swappable | None = None
        self._tracker_options: dict[str, Any] = {}

        self._stop = threading.Event()
        self._view_ready = threading.Event()
        self._view_ready.set()
        # Guards the pause/step state, pending requests and the running pipeline.
        self._lock = threading.Condition()
        self._paused = start_paused
        self._steps = 1 if start_paused else 0
        self._pending_models: LoadedModels | None = None
        self._recording_request: tuple[str, Any] | None = None
        self._pipeline: RunningPipeline | None = None
        self._speed = speed
        self._paced: PacedSource | None = None
        self._pauses = _PauseLog(start_paused)
        self.frames_emitted = 0
        # Seeks: asked for by the window (guarded by the lock) and carried out (worker thread only).
        self._seek_to: int | None = None
        self._accepts_seeks = False
        self.seeks_requested = 0
        self._seeks_done = 0
        # Owned by the worker thread: the open source and the results of the pipeline reading it.
        self._opened: Any = None
        self._results: Iterator[FrameResult] | None = None

    # ---- called from the GUI thread -------------------------------------------------

    def stop(self) -> None:
        """Ask the thread to finish; returns at once (the `finished` signal says when it has).

        The thread ends as soon as a model call in flight returns; a stream
        still being opened gives up at once.
        """
        self._stop.set()
        with self._lock:
            pipeline = self._pipeline
            self._lock.notify_all()
        if pipeline is not None:
            pipeline.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            if paused != self._paused:
                self._steps = 0
                self._pauses.set_paused(paused)
            self._paused = paused
            paced = self._paced
            self._lock.notify_all()
        if paced is not None:
            paced.set_paused(paused)

    @property
    def speed(self) -> float | None:
        with self._lock:
            return self._speed

    def set_speed(self, speed: float | None) -> None:
        """Play a file at its frame rate times `speed` from now on (None: as fast as possible)."""
        with self._lock:
            self._speed = speed
            paced = self._paced
        if paced is not None:
            paced.set_speed(speed)

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    def step(self) -> None:
        """While paused, let exactly one more frame through."""
        with self._lock:
            if self._paused:
                self._steps += 1
                self._lock.notify_all()

    def seek(self, index: int) -> bool:
        """Go on from frame `index` of the open file or folder, with a new tracker (IDs restart).

        False when this worker cannot: a live source, not running yet, at the
        end of the source or stopping (then start a new worker there). Paused,
        the frame sought is shown. Frames computed before the seek come with
        fewer `VideoFrame.seeks` than `seeks_requested`.
        """
        with self._lock:
            if not self._accepts_seeks or self._stop.is_set():
                return False
            self._seek_to = int(index)
            self.seeks_requested += 1
            self._steps = 1 if self._paused else 0
            self._lock.notify_all()
        return True

    def frame_shown(self) -> None:
        """The window has taken the last frame; the next may be sent."""
        self._view_ready.set()

    def set_models(self, models: LoadedModels) -> None:
        """Use `models` from the next frame on (same number of keypoints as the current ones)."""
        with self._lock:
            self._pending_models = models
            self._lock.notify_all()

    def start_recording(self, path: str | Path, fps: float) -> None:
        with self._lock:
            self._recording_request = ("start", (str(path), fps))
            self._lock.notify_all()

    def stop_recording(self) -> None:
        with self._lock:
            self._recording_request = ("stop", None)
            self._lock.notify_all()

    # ---- the worker thread ----------------------------------------------------------

    def run(self) -> None:
        recorder: VideoRecorder | None = None
        try:
            # The source first: one that cannot be opened fails before anything else is built.
            self._open(self.start_index)
            annotator = self._annotator or FrameAnnotator()
            settings, version = self._settings.snapshot()
            self._tracker = Swappable(self._tracker_factory(**settings.tracker_options))
            self._tracker_options = dict(settings.tracker_options)
            self._detector.set_score_threshold(settings.detection_threshold)
            if not self._start_pipeline():
                return
            with self._lock:
                self._accepts_seeks = hasattr(self._opened, "seek") and not getattr(self._opened, "live", False)
            fps_meter = _FpsMeter()
            last: VideoFrame | None = None
            while not self._stop.is_set():
                recorder = self._handle_recording_request(recorder)
                settings, new_version = self._settings.snapshot()
                changed = new_version != version
                if changed:
                    self._apply_settings(settings, annotator)
                    version = new_version
                if self._take_seek(annotator):
                    # The frame on screen is from before the seek: no redraw of it.
                    last = None
                    if not self._start_pipeline():
                        break
                if not self._may_advance(fps_meter):
                    if changed and last is not None:
                        # Paused: show the new display settings on the frame on screen.
                        last = self._annotate(last.result, settings, annotator, last.fps, redraw=True,
                                              latency_ms=last.timings_ms.get("latency"))
                        if not self._wait_for_view():
                            break
                        self.frame_ready.emit(last)
                    continue
                self._take_pending_models()
                result = next(self._results, None)
                if result is None:
                    if not self._ends():
                        continue  # a seek came in: the loop carries it out
                    if not self._stop.is_set():
                        self.source_ended.emit()
                    break
                last = self._annotate(result, settings, annotator, fps_meter.tick())
                # Again here: a request made while this frame was being computed records it.
                recorder = self._handle_recording_request(recorder)
                if recorder is not None:
                    recorder = self._record(recorder, last.buffer)
                if not self._wait_for_view():
                    break
                self.frames_emitted += 1
                self.frame_ready.emit(last)
        except Exception as error:  # noqa: BLE001 - shown in the window; the app stays usable
            if not self._stop.is_set():
                # The window shows and logs the message; the traceback is for --verbose.
                logger.debug("worker for %s failed", self.source, exc_info=True)
                self.failed.emit(explain_run_error(self.source, error))
        finally:
            with self._lock:
                self._accepts_seeks = False
            # Also ends a stream opener still retrying for a source that failed.
            self._stop.set()
            self._shutdown(recorder)

    def _open(self, start_index: int) -> None:
        """Open the source at `start_index`; files are read at their pace (`PacedSource`)."""
        opened = open_source_stoppable(self.source, self._stop, start_index=start_index)
        if not getattr(opened, "live", False):
            with self._lock:
                opened = self._paced = PacedSource(opened, self._speed, paused=self._paused)
        self._opened = opened

    def _start_pipeline(self) -> bool:
        """A pipeline on the open source (borrowed: the worker closes it); False when stopped meanwhile."""
        pipeline = self._pipeline_factory(BorrowedSource(self._opened), self._detector, self._estimator,
                                          self._tracker)
        with self._lock:
            self._pipeline = pipeline
        if self._stop.is_set():
            return False
        self._results = iter(pipeline.run())
        return True

    def _stop_pipeline(self) -> None:
        with self._lock:
            pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.stop()
        results, self._results = self._results, None
        if results is not None and hasattr(results, "close"):
            # Joins the pipeline's stage threads: returns once a model call in
            # flight has finished. This thread waits for it, the window does not.
            results.close()

    def _take_seek(self, annotator: Any) -> bool:
        """Carry out a seek the window asked for, if any: the pipeline stops and the source moves there.

        A new pipeline must then be started. The tracker is new (a jump is a
        fresh start for IDs) and so are the trails.
        """
        with self._lock:
            index, self._seek_to = self._seek_to, None
            requested = self.seeks_requested
        if index is None:
            return False
        self._stop_pipeline()
        if not self._opened.seek(index):
            logger.info("%s cannot seek to frame %d exactly: reopening it there", self.source, index + 1)
            opened, self._opened = self._opened, None
            opened.close()
            self._open(index)
        self._seeks_done = requested
        self._tracker.swap(self._tracker_factory(**self._tracker_options))
        reset = getattr(annotator, "reset", None)
        if reset is not None:
            reset()
        return True

    def _ends(self) -> bool:
        """At the end of the source: True to end the run, False when a seek is waiting (the run goes on)."""
        with self._lock:
            if self._seek_to is not None:
                return False
            self._accepts_seeks = False
            return True

    def _shutdown(self, recorder: VideoRecorder | None) -> None:
        try:
            self._stop_pipeline()
        except Exception:  # noqa: BLE001 - shutting down; log and go on releasing
            logger.exception("error while stopping the pipeline for %s", self.source)
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.close()
        if recorder is not None:
            self._finish_recording(recorder)

    def _may_advance(self, fps_meter: _FpsMeter) -> bool:
        """True when a frame may be pulled now; waits a little while paused."""
        with self._lock:
            if not self._paused:
                return True
            if self._steps > 0:
                self._steps -= 1
                return True
            fps_meter.reset()
            self._lock.wait(_POLL_S)
            return False

    def _wait_for_view(self) -> bool:
        while not self._view_ready.wait(_POLL_S):
            if self._stop.is_set():
                return False
        self._view_ready.clear()
        return not self._stop.is_set()

    def _take_pending_models(self) -> None:
        with self._lock:
            models, self._pending_models = self._pending_models, None
        if models is None:
            return
        self._detector.swap(models.detector)
        self._estimator.swap(models.estimator)
        self._device = models.device
        logger.info("now running %s on %s", models.label, models.device)

    def _apply_settings(self, settings: ViewSettings, annotator: Any) -> None:
        self._detector.set_score_threshold(settings.detection_threshold)
        if settings.tracker_options != self._tracker_options:
            # New options mean a new tracker: IDs restart, so old trails would mislead.
            self._tracker.swap(self._tracker_factory(**settings.tracker_options))
            self._tracker_options = dict(settings.tracker_options)
            reset = getattr(annotator, "reset", None)
            if reset is not None:
                reset()

    def _annotate(self, result: FrameResult, settings: ViewSettings, annotator: Any, fps: float,
                  redraw: bool = False, latency_ms: float | None = None) -> VideoFrame:
        started = time.perf_counter()
        shown = filter_poses(result.poses, settings.detection_threshold)
        skeleton = getattr(self._estimator.target, "skeleton", None)
        buffer = annotator(result.frame.image, shown, skeleton, settings)
        image = image_from_bgr(buffer)
        drawing_s = time.perf_counter() - started
        timings_ms = {stage: 1000.0 * float(result.timings_s.get(stage, 0.0)) for stage in STAGES}
        timings_ms["drawing"] = 1000.0 * drawing_s
        latency_s = result.timings_s.get("latency")
        if latency_ms is not None:
            # A redraw of the frame on screen: its latency is the one it was shown with.
            timings_ms["latency"] = latency_ms
        elif latency_s is not None:
            # Capture to now, less the time the frame sat in the pipeline while paused.
            now = time.monotonic()
            with self._lock:
                paused_s = self._pauses.paused_s(now - latency_s, now)
            # Never less than the frame's own stage times (they may have run during the pause).
            working_s = sum(float(result.timings_s.get(stage, 0.0)) for stage in STAGES)
            timings_ms["latency"] = 1000.0 * max(working_s, latency_s - paused_s)
        return VideoFrame(image=image, buffer=buffer, result=result, shown=shown, timings_ms=timings_ms,
                          fps=fps, device=self._device, redraw=redraw, seeks=self._seeks_done)

    def _handle_recording_request(self, recorder: VideoRecorder | None) -> VideoRecorder | None:
        with self._lock:
            request, self._recording_request = self._recording_request, None
        if request is None:
            return recorder
        action, payload = request
        if recorder is not None:
            self._finish_recording(recorder)
            recorder = None
        if action == "start":
            path, fps = payload
            try:
                recorder = VideoRecorder(path, fps)
            except ValueError as error:
                self.recording_changed.emit(False, str(error))
                return None
            self.recording_changed.emit(True, path)
        return recorder

    def _record(self, recorder: VideoRecorder, image: np.ndarray) -> VideoRecorder | None:
        try:
            recorder.write(image)
            return recorder
        except OSError as error:
            self.recording_changed.emit(False, f"Recording failed: {error}")
            return None

    def _finish_recording(self, recorder: VideoRecorder) -> None:
        try:
            path = recorder.close()
        except OSError as error:
            self.recording_changed.emit(False, f"Could not finish the recording {recorder.path}: {error}")
            return
        self.recording_changed.emit(False, str(path) if path else "Recording stopped: no frame was recorded")
