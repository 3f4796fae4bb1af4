"""The threaded pipeline with fake stages: order, policies, batching, errors, stopping."""

from __future__ import annotations

import _thread
import dataclasses
import threading
import time

import numpy as np
import pytest

from pipeline.capture import LiveSource
from core.types import Detections
from pipeline.pipeline import LIVE_DETECT_EVERY, Pipeline, PipelineError, live_in_flight_limit
from pipeline.profile import PipelineProfile
from pipeline.stages import boxes_from_keypoints
from tests.pipeline_fakes import FakeCamera, FakeDetector, FakeEstimator, FakeTracker, ListSource
from tracker import TrackingResult


def pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("stage-", "capture-reader"))]


# Frames a running file pipeline can hold past the consumer: channels of `queue_size` (4)
# in front of detection, pose, tracking, sinks and the caller, and at most a pose batch of 4
# frames plus one frame in each other stage. A stopped pipeline reads no further frame.
IN_FLIGHT_BOUND = 5 * 4 + 4 + 4


def wait_no_threads(timeout_s: float = 30.0) -> float:
    """Seconds until no pipeline thread is left (fails after `timeout_s`, a hang guard, not a speed claim)."""
    started = time.monotonic()
    while pipeline_threads():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"threads still alive after {timeout_s} s: {[t.name for t in pipeline_threads()]}")
        time.sleep(0.01)
    return time.monotonic() - started


class RecordingSink:
    def __init__(self) -> None:
        self.indices: list[int] = []
        self.closed_with: list[bool] = []

    def write(self, result) -> None:
        self.indices.append(result.frame.index)

    def close(self, complete: bool) -> None:
        self.closed_with.append(complete)


def test_file_source_every_frame_in_order_with_results_filled_in():
    sink = RecordingSink()
    source = ListSource(30)
    pipeline = Pipeline(source, FakeDetector(people=2, sleep_s=0.002), FakeEstimator(sleep_s=0.004), FakeTracker(),
                        sinks=[sink])
    results = list(pipeline.run())
    assert [r.frame.index for r in results] == list(range(30))
    # The pixels encode the index: the image travelled with its own frame.
    assert all(int(r.frame.image[0, 0, 0]) == r.frame.index for r in results)
    first = results[0]
    assert first.poses.keypoints.shape == (2, 17, 2) and first.poses.scores.shape == (2, 17)
    assert first.poses.track_ids.tolist() == [1, 2]
    np.testing.assert_array_equal(first.poses.boxes, first.detections.boxes)
    assert {"capture", "detection", "pose", "tracking", "sinks", "latency"} <= set(first.timings_s)
    assert first.timings_s["pose"] > 0.0 and first.dropped_frames == 0
    assert sink.indices == list(range(30)) and sink.closed_with == [True]
    assert source.closed
    wait_no_threads()


def test_frames_without_people_still_come_out():
    results = list(Pipeline(ListSource(5), FakeDetector(people=0), FakeEstimator(), FakeTracker()).run())
    assert [r.frame.index for r in results] == list(range(5))
    assert all(len(r.poses) == 0 and r.poses.keypoints.shape == (0, 17, 2) for r in results)


def test_slow_stage_never_drops_a_file_frame():
    estimator = FakeEstimator(sleep_s=0.01)
    results = list(Pipeline(ListSource(25), FakeDetector(), estimator, FakeTracker(), queue_size=2).run())
    assert [r.frame.index for r in results] == list(range(25))
    assert sum(estimator.batch_sizes) == 25


def test_pose_stage_batches_queued_frames_in_one_call():
    # Pose is much slower than detection, so frames queue up in front of it.
    estimator = FakeEstimator(sleep_s=0.03)
    results = list(Pipeline(ListSource(16), FakeDetector(), estimator, FakeTracker(), pose_batch_frames=4).run())
    assert [r.frame.index for r in results] == list(range(16))
    assert max(estimator.batch_sizes) > 1 and max(estimator.batch_sizes) <= 4
    assert len(estimator.batch_sizes) < 16


class _StartedFrames:
    """Which frames each stage has started, so that one stage can wait for another (a handshake)."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self._condition = threading.Condition()
        self._started: dict[str, set[int]] = {}
        self.timeout_s = timeout_s

    def start(self, stage: str, index: int) -> None:
        with self._condition:
            self._started.setdefault(stage, set()).add(index)
            self._condition.notify_all()

    def wait(self, stage: str, index: int) -> None:
        with self._condition:
            if not self._condition.wait_for(lambda: index in self._started.get(stage, ()), self.timeout_s):
                raise AssertionError(f"{stage} never started frame {index} while the next stage held the frame before")


def _frame_index(image: np.ndarray) -> int:
    return int(image[0, 0, 0])  # the fakes' pixels encode the frame index


def test_each_stage_works_on_the_next_frame_while_the_stage_after_it_holds_this_one():
    # The pose call for frame k returns only once the detector has started frame k + 1,
    # and the tracker's update for frame k only once pose has started frame k + 1: a
    # pipeline that ran the stages one after another could never get there (the
    # handshake times out and fails the stage). What this overlap buys in frames per
    # second is measured by benchmarks/pipeline.py (throughput_ratio), not here.
    frames = 8
    started = _StartedFrames()

    class Detector(FakeDetector):
        def __call__(self, batch):
            for frame in batch:
                started.start("detection", frame.index)
            return super().__call__(batch)

    class Estimator(FakeEstimator):
        def estimate_many(self, images, boxes_per_image):
            (index,) = [_frame_index(image) for image in images]
            started.start("pose", index)
            if index + 1 < frames:
                started.wait("detection", index + 1)
            return super().estimate_many(images, boxes_per_image)

    class Tracker(FakeTracker):
        def update(self, keypoints, boxes=None, scores=None, frame=None):
            index = _frame_index(frame)
            if index + 1 < frames:
                started.wait("pose", index + 1)
            return super().update(keypoints, boxes, scores, frame)

    results = list(Pipeline(ListSource(frames), Detector(), Estimator(), Tracker(), pose_batch_frames=1).run())
    assert [r.frame.index for r in results] == list(range(frames))


@pytest.mark.parametrize(
    ("make", "stage", "message"),
    [
        (lambda: dict(source=ListSource(10, fail_at=4)), "capture", "read error at frame 4"),
        (lambda: dict(detector=FakeDetector(fail_at=3)), "detection", "detector exploded on frame 3"),
        (lambda: dict(estimator=FakeEstimator(fail_at_call=2)), "pose", "pose estimator exploded"),
    ],
)
def test_stage_exception_is_reported_with_its_stage_and_stops_everything(make, stage, message):
    parts = dict(source=ListSource(10), detector=FakeDetector(), estimator=FakeEstimator(), tracker=FakeTracker())
    parts.update(make())
    sink = RecordingSink()
    pipeline = Pipeline(parts["source"], parts["detector"], parts["estimator"], parts["tracker"], sinks=[sink],
                        pose_batch_frames=1)
    with pytest.raises(PipelineError) as raised:
        list(pipeline.run())
    assert raised.value.stage == stage
    assert stage in str(raised.value) and message in str(raised.value)
    assert sink.closed_with == [False]
    wait_no_threads()


def test_a_failed_run_returns_only_after_a_slow_model_call_has_finished():
    # The capture fails while the detector is inside a call longer than the join
    # timeout: run() must not return under it (the next video would share the
    # models, and an interpreter exiting under a torch call aborts the process).
    detector = FakeDetector(sleep_s=1.5)
    pipeline = Pipeline(ListSource(5, fail_at=1), detector, FakeEstimator(), FakeTracker())
    with pytest.raises(PipelineError, match="capture"):
        list(pipeline.run())
    assert pipeline_threads() == []


def test_tracker_returning_wrong_number_of_ids_is_a_tracking_error():
    class BadTracker:
        def update(self, keypoints, boxes=None, scores=None, frame=None):
            result = TrackingResult.of_inputs(keypoints, np.zeros(len(keypoints), np.int64), boxes, scores)
            return dataclasses.replace(result, ids=np.zeros(len(keypoints) + 1, np.int64))

    with pytest.raises(PipelineError, match="tracking.*3 IDs for 2 poses"):
        list(Pipeline(ListSource(3), FakeDetector(people=2), FakeEstimator(), BadTracker()).run())


# How long stopping takes (the docstring's "about a second") is measured by benchmarks/pipeline.py
# (stop_s); these tests check that it stops where it is, without working through the source.
def test_closing_the_generator_stops_all_threads_without_reading_on():
    sink = RecordingSink()
    source = ListSource(10_000, read_s=0.001)
    generator = Pipeline(source, FakeDetector(sleep_s=0.01), FakeEstimator(sleep_s=0.01), FakeTracker(),
                         sinks=[sink]).run()
    for count, _ in enumerate(generator):
        if count == 3:
            break
    generator.close()
    assert pipeline_threads() == []  # close() returns once every thread has ended
    assert sink.closed_with == [False] and source.closed
    assert source.next_index <= 4 + IN_FLIGHT_BOUND


def test_ctrl_c_in_the_consumer_stops_all_threads_without_reading_on():
    source = ListSource(10_000, read_s=0.001)
    pipeline = Pipeline(source, FakeDetector(sleep_s=0.02), FakeEstimator(sleep_s=0.02), FakeTracker())
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    seen = 0
    with pytest.raises(KeyboardInterrupt):
        with pipeline:
            for _ in pipeline.run():
                seen += 1
    wait_no_threads()
    assert seen > 0 and source.closed
    assert source.next_index <= seen + IN_FLIGHT_BOUND


def test_stop_from_another_thread_ends_run_without_error():
    pipeline = Pipeline(ListSource(10_000, read_s=0.001), FakeDetector(), FakeEstimator(sleep_s=0.005), FakeTracker())
    results = []
    for result in pipeline.run():
        results.append(result)
        if len(results) == 3:
            stopper = threading.Thread(target=pipeline.stop)
            stopper.start()
            stopper.join()
    # Only the frames already in flight when stop() returned came out after it.
    assert 3 <= len(results) <= 3 + IN_FLIGHT_BOUND
    wait_no_threads()


def test_run_twice_is_refused():
    pipeline = Pipeline(ListSource(2), FakeDetector(), FakeEstimator(), FakeTracker())
    list(pipeline.run())
    with pytest.raises(RuntimeError, match="runs once"):
        list(pipeline.run())


@pytest.mark.parametrize("max_in_flight", [1, 2])
def test_live_source_takes_the_newest_frame_and_never_queues_more_than_the_limit(max_in_flight):
    # Latency stays low because frames do not queue: capture takes a frame only while fewer
    # than the limit are between it and the caller, and skips the camera frames that came
    # meanwhile. Checked on the order of events (a frame starts detection / its sink wrote
    # it), which load cannot change; the latency in milliseconds against the stage times is
    # measured by benchmarks/pipeline.py (live_latency_ratio).
    events: list[tuple[str, int]] = []  # list.append is atomic: one order for all threads

    class Detector(FakeDetector):
        def __call__(self, frames):
            events.extend(("detect", frame.index) for frame in frames)
            return super().__call__(frames)

    class Sink(RecordingSink):
        def write(self, result) -> None:  # before the result reaches the caller and frees its place
            events.append(("written", result.frame.index))
            super().write(result)

    camera = FakeCamera(fps=200.0)
    source = LiveSource(lambda: camera, name="fake camera")
    pipeline = Pipeline(source, Detector(sleep_s=0.01), FakeEstimator(sleep_s=0.02), FakeTracker(sleep_s=0.005),
                        detect_every=1, max_in_flight=max_in_flight, sinks=[Sink()])
    assert pipeline.live
    results = []
    for result in pipeline.run():
        results.append(result)
        if len(results) == 40:
            break
    wait_no_threads()
    indices = [r.frame.index for r in results]
    assert indices == sorted(set(indices))  # increasing, never repeated
    assert results[-1].dropped_frames > 0 and indices[-1] > len(results)
    in_flight, most = 0, 0
    for kind, _ in list(events):
        in_flight += 1 if kind == "detect" else -1
        most = max(most, in_flight)
    assert 1 <= most <= max_in_flight


def test_live_in_flight_limit():
    assert live_in_flight_limit([0.03, 0.0, 0.0]) == 1  # one dominant stage: no overlap helps
    assert live_in_flight_limit([0.02, 0.02]) == 2  # two equal stages: overlap them
    assert live_in_flight_limit([0.03, 0.05, 0.005]) == 2
    assert live_in_flight_limit([0.01] * 4) == 4
    assert live_in_flight_limit([]) == 1


def test_detect_every_runs_the_detector_on_every_nth_frame_and_boxes_follow_the_poses():
    detector = FakeDetector(people=2)
    results = list(Pipeline(ListSource(10), detector, FakeEstimator(), FakeTracker(), detect_every=3).run())
    assert [r.frame.index for r in results] == list(range(10))
    assert [index for call in detector.calls for index in call] == [0, 3, 6, 9]
    for result in results:
        assert len(result.poses) == 2
    # In between, boxes come from the previous frame's keypoints (widened a little).
    np.testing.assert_allclose(results[1].detections.boxes, boxes_from_keypoints(results[0].poses).boxes)


def test_boxes_from_keypoints_widen_the_confident_joints():
    from core.types import TrackedPoses

    keypoints = np.array([[[10, 20], [30, 60], [500, 500]]], np.float32)
    scores = np.array([[0.9, 0.9, 0.05]], np.float32)
    poses = TrackedPoses(keypoints, scores, np.zeros((1, 4)), np.ones(1), np.ones(1), np.zeros(1))
    boxes = boxes_from_keypoints(poses, margin=0.1).boxes
    np.testing.assert_allclose(boxes, [[8, 16, 32, 64]])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="detect_every"):
        Pipeline(ListSource(1), FakeDetector(), FakeEstimator(), detect_every=0)
    with pytest.raises(FileNotFoundError, match="no_such_video.mp4"):
        Pipeline("no_such_video.mp4", FakeDetector(), FakeEstimator())


def test_live_sources_detect_every_few_frames_by_default_and_files_every_frame():
    camera = FakeCamera(fps=200.0)
    live = Pipeline(LiveSource(lambda: camera, name="fake camera"), FakeDetector(), FakeEstimator())
    assert live.detect_every == LIVE_DETECT_EVERY > 1
    live.stop()
    live.source.close()
    assert Pipeline(ListSource(1), FakeDetector(), FakeEstimator()).detect_every == 1


class _PersonEntersDetector(FakeDetector):
    """One person until `enters_at`, then a second one (away from the first)."""

    def __init__(self, enters_at: int) -> None:
        super().__init__(people=1)
        self.enters_at = enters_at

    def __call__(self, frames):
        results = super().__call__(frames)
        for position, frame in enumerate(frames):
            if frame.index >= self.enters_at:
                boxes = np.array([[4, 4, 12, 40], [40, 4, 52, 40]], np.float32)
                results[position] = Detections(boxes, np.array([0.9, 0.8], np.float32))
        return results


@pytest.mark.parametrize("every", [1, 3, 5])
@pytest.mark.parametrize("enters_at", [1, 7, 8])
def test_a_new_person_is_found_within_detect_every_frames(every, enters_at):
    results = list(Pipeline(ListSource(20), _PersonEntersDetector(enters_at), FakeEstimator(), FakeTracker(),
                            detect_every=every).run())
    counts = [len(result.poses) for result in results]
    first_seen = counts.index(2)
    assert enters_at <= first_seen < enters_at + every, counts
    assert all(count == 2 for count in counts[first_seen:])  # then followed by the tracked poses


class _TimedEstimator(FakeEstimator):
    """Reports its own crop/network/decode split, as `pose.PoseEstimator` does."""

    def estimate_many(self, images, boxes_per_image):
        results = super().estimate_many(images, boxes_per_image)
        self.last_timings_s = {"crop": 0.001, "network": 0.004, "decode": 0.0005}
        return results


def test_profile_sums_stage_times_queue_waits_and_fps():
    profile = PipelineProfile()
    results = list(Pipeline(ListSource(12), FakeDetector(sleep_s=0.01), _TimedEstimator(sleep_s=0.005),
                            FakeTracker(), detect_every=3, pose_batch_frames=1, profile=profile).run())
    assert len(results) == 12
    summary = profile.as_dict()
    assert summary["frames"] == 12 and summary["detected_frames"] == 4
    stages = summary["stage_ms_per_frame"]
    assert list(stages)[:4] == ["capture", "detection", "pose", "crop"]
    # The detector ran on one frame in three: its calls (10 ms of sleep at least) spread over all 12 frames.
    detection_ms = 1000 * sum(result.timings_s.get("detection", 0.0) for result in results)
    assert stages["detection"] == pytest.approx(detection_ms / 12, abs=1e-3) and stages["detection"] >= 10.0 / 3
    assert stages["network"] == pytest.approx(4.0) and stages["crop"] == pytest.approx(1.0)
    assert stages["pose"] >= 5.0
    assert set(summary["wait_ms_per_frame"]) == {"detection", "pose", "tracking"}
    assert summary["fps"] > 0 and summary["wall_s"] > 0
    for result in results:
        assert result.timings_s["network"] == pytest.approx(0.004)
        assert "wait_pose" in result.timings_s
    text = "\n".join(profile.lines())
    assert "12 frames (4 detected)" in text and "network" in text and "queue wait" in text



class _BatchedEstimator(FakeEstimator):
    """A FakeEstimator with a network call size, as `pose.PoseEstimator.batch_size`; records crops per call."""

    def __init__(self, batch_size: int, sleep_s: float = 0.0) -> None:
        super().__init__(sleep_s=sleep_s)
        self.batch_size = batch_size
        self.crops_per_call: list[int] = []

    def estimate_many(self, images, boxes_per_image):
        self.crops_per_call.append(sum(len(boxes) for boxes in boxes_per_image))
        return super().estimate_many(images, boxes_per_image)


@pytest.mark.parametrize("people, batch_size, most_frames", [(2, 8, 4), (3, 8, 2), (8, 8, 1), (10, 8, 1)])
def test_queued_frames_share_a_pose_call_only_while_their_crops_fit_one_call(people, batch_size, most_frames):
    estimator = _BatchedEstimator(batch_size, sleep_s=0.05)
    results = list(Pipeline(ListSource(12), FakeDetector(people=people), estimator, queue_size=8).run())
    assert len(results) == 12
    assert max(estimator.batch_sizes) == most_frames
    assert all(crops <= max(batch_size, people) for crops in estimator.crops_per_call)
    if most_frames > 1:
        assert len(estimator.batch_sizes) < 12  # frames were merged


def test_an_explicit_frame_count_batches_frames_whatever_their_crops():
    estimator = _BatchedEstimator(8, sleep_s=0.05)
    list(Pipeline(ListSource(12), FakeDetector(people=8), estimator, queue_size=8, pose_batch_frames=4).run())
    assert max(estimator.batch_sizes) > 1


class _BodyLikeEstimator(FakeEstimator):
    """Keypoints inside the box as a body's joints are (the box is their extent plus 10% each side)."""

    def estimate_many(self, images, boxes_per_image):
        results = []
        for (keypoints, scores), boxes in zip(super().estimate_many(images, boxes_per_image), boxes_per_image):
            boxes = np.asarray(boxes, np.float32).reshape(-1, 1, 4)
            centers = (boxes[..., :2] + boxes[..., 2:]) / 2
            results.append((centers + (keypoints - centers) / 1.2, scores))
        return results


def test_a_new_person_found_by_a_detector_run_stays_between_runs_with_the_real_tracker():
    from tracker import PoseTracker

    every, enters_at = 5, 7
    results = list(Pipeline(ListSource(20), _PersonEntersDetector(enters_at), _BodyLikeEstimator(), PoseTracker(),
                            detect_every=every).run())
    counts = [len(result.poses) for result in results]
    first_seen = counts.index(2)
    assert enters_at <= first_seen < enters_at + every, counts
    assert all(count == 2 for count in counts[first_seen:]), counts
    ids = {int(i) for result in results[first_seen:] for i in result.poses.track_ids}
    assert len(ids) == 2  # the same two people throughout, followed by their tracked poses


class _Intervals:
    """(start, end) of every model call, from any thread."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def timed(self, function):
        def call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.spans.append((started, time.perf_counter()))
        return call

    def overlapping(self) -> bool:
        spans = sorted(self.spans)
        return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


def _models_on(device: str | None, intervals: _Intervals, sleep_s: float = 0.03):
    """A fake detector and estimator whose calls `intervals` records, each on `device` (None: no device, a box file)."""
    detector, estimator = FakeDetector(people=2, sleep_s=sleep_s), FakeEstimator(sleep_s=sleep_s)

    class TimedDetector:  # __call__ is looked up on the class, so it is wrapped in one
        __call__ = staticmethod(intervals.timed(detector))

    timed_detector = TimedDetector()
    estimator.estimate_many = intervals.timed(estimator.estimate_many)
    if device is not None:
        timed_detector.device = estimator.device = device
    return timed_detector, estimator


@pytest.mark.parametrize("device, overlap", [("cpu", False), ("cuda:0", True), (None, True)])
def test_detector_and_pose_network_take_turns_only_when_both_are_on_the_cpu(device, overlap):
    # On the CPU each model already uses every core: overlapped, PyTorch's thread teams fight (1.6x slower).
    intervals = _Intervals()
    detector, estimator = _models_on(device, intervals)
    profile = PipelineProfile()
    results = list(Pipeline(ListSource(10), detector, estimator, profile=profile).run())
    assert len(results) == 10  # 10 detector calls; pose calls may take several queued frames at once
    assert intervals.overlapping() is overlap
    waits = profile.as_dict()["wait_ms_per_frame"]
    if device == "cpu":
        # A turn's wait is reported as such, not as the stage's own time (each call sleeps 30 ms).
        assert waits["cpu_detection"] + waits["cpu_pose"] > 5
        assert profile.as_dict()["stage_ms_per_frame"]["pose"] < 45
    else:
        assert "cpu_pose" not in waits and "cpu_detection" not in waits
