"""PoseTracker frame by frame: birth, coasting, death, ID rules, inputs, options, smoothing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tracker import PoseTracker, TrackerOptions, TrackState
from tracker.smoothing import OneEuroFilter
from evaluation.scenes import standing_pose


def people(*centres, height=120.0, confidence=0.9):
    """(N, 17, 3) poses standing at the given (x, y) mid-hip positions."""
    if not centres:
        return np.zeros((0, 17, 3), np.float32)
    return np.stack([standing_pose(c, height, confidence) for c in centres])


def walk(tracker, start_xs, frames, speed=4.0, y=200.0, skip=None):
    """Feed people walking right from `start_xs`; `skip[t]` lists people missing at frame t.
    Returns the list of {person: id} per frame."""
    skip = skip or {}
    history = []
    for t in range(frames):
        visible = [i for i in range(len(start_xs)) if i not in skip.get(t, ())]
        ids = tracker.update(people(*[(start_xs[i] + speed * t, y) for i in visible])).ids
        history.append(dict(zip(visible, ids.tolist())))
    return history


def test_birth_gives_new_ids_starting_at_one_and_keeps_them():
    tracker = PoseTracker()
    history = walk(tracker, [100, 300, 500], 10)
    assert history[0] == {0: 1, 1: 2, 2: 3}
    assert all(frame == history[0] for frame in history)
    assert [t.state for t in tracker.tracks] == [TrackState.CONFIRMED] * 3
    assert [t.hits for t in tracker.tracks] == [10] * 3
    assert [t.age for t in tracker.tracks] == [10] * 3


def test_ids_follow_the_person_not_the_input_order():
    tracker = PoseTracker()
    first = tracker.update(people((100, 200), (400, 200))).ids
    second = tracker.update(people((404, 200), (104, 200))).ids
    assert second.tolist() == first[::-1].tolist()


@pytest.mark.parametrize("gap", [1, 2, 3])
def test_coasting_through_a_short_miss_keeps_the_id(gap):
    tracker = PoseTracker()
    history = walk(tracker, [100, 300], 12, skip={t: {0} for t in range(5, 5 + gap)})
    assert {frame[0] for frame in history if 0 in frame} == {1}
    assert {frame[1] for frame in history} == {2}
    # While missing, the track is LOST, not gone.
    tracker = PoseTracker()
    walk(tracker, [100, 300], 5)
    tracker.update(people((320, 200)))
    states = {t.track_id: (t.state, t.time_since_update) for t in tracker.tracks}
    assert states == {1: (TrackState.LOST, 1), 2: (TrackState.CONFIRMED, 0)}


def test_simple_baseline_gives_a_new_id_after_one_missed_frame():
    tracker = PoseTracker.simple_baseline()
    history = walk(tracker, [100, 300], 8, skip={4: {0}})
    assert history[3][0] == 1 and history[5][0] == 3


def test_death_after_max_age_and_ids_are_never_reused():
    tracker = PoseTracker(max_age=3)
    tracker.update(people((100, 200), (400, 200)))
    for _ in range(3):
        tracker.update(people((400, 200)))
    assert sorted(t.track_id for t in tracker.tracks) == [1, 2]  # lost for 3 frames: still kept
    tracker.update(people((400, 200)))
    assert [t.track_id for t in tracker.tracks] == [2]  # 4th miss: removed
    ids = tracker.update(people((100, 200), (400, 200))).ids
    assert ids.tolist() == [3, 2]  # same place, but the old ID is gone for good


def test_ids_are_unique_over_many_births_and_deaths():
    rng = np.random.default_rng(0)
    tracker = PoseTracker(max_age=1)
    seen_alive = {}
    for t in range(60):
        centres = [(x, 200) for x in rng.choice(np.arange(60, 600, 90), size=rng.integers(0, 5), replace=False)]
        ids = tracker.update(people(*centres)).ids
        assert len(set(ids.tolist())) == len(ids)
        for track_id in ids.tolist():
            seen_alive.setdefault(track_id, t)
    assert sorted(seen_alive) == list(range(1, len(seen_alive) + 1))


def test_reset_starts_a_new_video():
    tracker = PoseTracker()
    walk(tracker, [100, 300], 3)
    tracker.reset()
    assert tracker.tracks == [] and tracker.frame_count == 0
    assert tracker.update(people((100, 200))).ids.tolist() == [1]


def test_two_trackers_do_not_share_an_id_counter():
    first, second = PoseTracker(), PoseTracker()
    first.update(people((100, 200), (300, 200)))
    assert second.update(people((100, 200))).ids.tolist() == [1]


def test_empty_frames_and_zero_people_shapes():
    tracker = PoseTracker()
    for empty in (np.zeros((0, 17, 3)), [], np.zeros((0,))):
        ids = tracker.update(empty).ids
        assert ids.shape == (0,) and ids.dtype == np.int64
    result = tracker.update(np.zeros((0, 17, 3)), boxes=np.zeros((0, 4)), scores=np.zeros(0))
    assert result.keypoints.shape == (0, 17, 3) and result.boxes.shape == (0, 4)
    assert result.track_ids.shape == (0,) and result.detection_index.shape == (0,)
    walk(tracker, [100], 3)
    assert tracker.update(np.zeros((0, 17, 3))).ids.shape == (0,)
    assert tracker.tracks[0].state == TrackState.LOST


@pytest.mark.parametrize("kwargs, message", [
    (dict(keypoints=np.zeros((2, 17, 2))), r"keypoints must have shape \(N, 17, 3\)"),
    (dict(keypoints=np.zeros((17, 3))), r"keypoints must have shape"),
    (dict(keypoints=np.zeros((2, 16, 3))), r"keypoints must have shape"),
    (dict(keypoints=np.full((1, 17, 3), np.nan)), "NaN"),
    (dict(keypoints=np.zeros((2, 17, 3)), boxes=np.zeros((3, 4))), r"boxes must have shape \(2, 4\)"),
    (dict(keypoints=np.zeros((1, 17, 3)), boxes=[[10, 0, 0, 10]]), "x2 >= x1"),
    (dict(keypoints=np.zeros((2, 17, 3)), scores=np.zeros(3)), r"scores must have shape \(2,\)"),
    (dict(keypoints=np.zeros((1, 17, 3)), frame=np.zeros((10, 10, 3), np.float32)), "frame must be"),
])
def test_bad_inputs_raise_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PoseTracker().update(**kwargs)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="unknown option"):
        PoseTracker(max_agee=3)
    with pytest.raises(ValueError, match="matching must be one of"):
        PoseTracker(matching="auction")
    with pytest.raises(ValueError, match="similarity_threshold must be in"):
        TrackerOptions(similarity_threshold=1.5)
    with pytest.raises(ValueError, match="sigmas"):
        TrackerOptions(sigmas=(0.1, -0.2))
    assert PoseTracker({"max_age": 5}, min_hits=2).options == TrackerOptions(max_age=5, min_hits=2)


def test_other_keypoint_layouts_follow_the_sigmas():
    tracker = PoseTracker(sigmas=(0.1,) * 5)
    poses = people((100, 200))[:, :5]
    assert tracker.update(poses).ids.tolist() == [1]
    with pytest.raises(ValueError, match=r"\(N, 5, 3\)"):
        tracker.update(people((100, 200)))


def test_low_score_detections_never_start_tracks_but_continue_them():
    tracker = PoseTracker(min_score=0.5)
    assert tracker.update(people((100, 200)), scores=[0.3]).ids.tolist() == [-1]
    assert tracker.tracks == []
    tracker.update(people((100, 200)), scores=[0.9])
    assert tracker.update(people((104, 200)), scores=[0.3]).ids.tolist() == [1]  # ByteTrack-style second stage
    baseline = PoseTracker.simple_baseline()
    baseline.update(people((100, 200)), scores=[0.9])
    assert baseline.update(people((104, 200)), scores=[0.3]).ids.tolist() == [-1]


def test_a_pose_with_too_few_confident_keypoints_does_not_start_a_track():
    pose = people((100, 200))
    pose[0, 2:, 2] = 0.05
    assert PoseTracker().update(pose, scores=[0.9]).ids.tolist() == [-1]


def test_min_hits_holds_the_id_back_until_confirmed():
    tracker = PoseTracker(min_hits=3)
    ids = [tracker.update(people((100 + 3 * t, 200))).ids.tolist() for t in range(4)]
    assert ids == [[-1], [-1], [1], [1]]
    tracker.update(people((500, 300)))  # a one-frame false positive ...
    tracker.update(people((112, 200)))
    assert tracker.update(people((115, 200), (600, 100))).ids.tolist() == [1, -1]
    assert [t.track_id for t in tracker.tracks if t.state != TrackState.TENTATIVE] == [1]


def test_crossing_people_keep_their_ids_with_motion_but_not_without():
    """Two people walk through each other at 6 px/frame (same size, same height)."""
    def run(tracker):
        history = []
        for t in range(40):
            a, b = (200 + 6 * t, 200), (443 - 6 * t, 203)
            ids = tracker.update(people(a, b)).ids
            history.append(tuple(ids.tolist()))
        return history
    ours = run(PoseTracker())
    assert set(ours) == {(1, 2)}
    baseline = run(PoseTracker.simple_baseline())
    assert set(baseline) != {(1, 2)}  # the baseline swaps identities at the crossing


def test_update_returns_tracked_inputs_with_their_detection_index():
    tracker = PoseTracker()
    tracker.update(people((100, 200)))
    poses = people((500, 100), (104, 200))
    result = tracker.update(poses, scores=[0.2, 0.9])
    assert result.ids.tolist() == [-1, 1]
    assert result.track_ids.tolist() == [1] and result.detection_index.tolist() == [1]
    np.testing.assert_array_equal(result.keypoints, poses[1:])
    assert not result.propagated.any()


def test_one_euro_smoothing_reduces_jitter():
    rng = np.random.default_rng(0)
    smooth, raw = PoseTracker(smoothing="one_euro"), PoseTracker()
    truth = people((300, 200))
    smooth_out, raw_out = [], []
    for _ in range(60):
        noisy = truth.copy()
        noisy[..., :2] += rng.normal(0, 3.0, noisy[..., :2].shape)
        smooth_out.append(smooth.update(noisy).keypoints[0, :, :2])
        raw_out.append(raw.update(noisy).keypoints[0, :, :2])
    smooth_var = np.var(np.array(smooth_out[10:]), axis=0).mean()
    raw_var = np.var(np.array(raw_out[10:]), axis=0).mean()
    assert raw_var == pytest.approx(9.0, rel=0.3)
    assert smooth_var < 0.4 * raw_var
    # The filter itself: a constant signal passes unchanged.
    one_euro = OneEuroFilter()
    for _ in range(5):
        value = one_euro(np.array([1.0, 2.0]), 1 / 30)
    np.testing.assert_allclose(value, [1.0, 2.0])


def test_hungarian_matching_tracks_the_same_as_greedy_on_separated_people():
    greedy, hungarian = PoseTracker(matching="greedy"), PoseTracker(matching="hungarian")
    assert walk(greedy, [100, 300, 500], 8) == walk(hungarian, [100, 300, 500], 8)


@pytest.mark.parametrize("similarity", ["oks", "iou", "mix"])
def test_every_similarity_tracks_separated_people(similarity):
    history = walk(PoseTracker(similarity=similarity), [100, 300, 500], 8)
    assert all(frame == {0: 1, 1: 2, 2: 3} for frame in history)


def test_tracker_imports_neither_torch_nor_cv2_without_flow():
    code = ("import sys, numpy as np, tracker; t = tracker.PoseTracker(); t.update(np.zeros((0, 17, 3)));"
            "import evaluation.scenes, evaluation.tracking;"
            "assert 'torch' not in sys.modules and 'cv2' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _still_trio(tracker, frames, seed=0, miss_every=0):
    """Three people standing still with whole-pose jitter (1.5 px) and keypoint jitter;
    every `miss_every`-th frame one of them is not detected. Returns the largest
    velocity length seen after the first 100 frames and the set of IDs given."""
    rng = np.random.default_rng(seed)
    largest, ids = 0.0, set()
    for t in range(frames):
        present = [0, 1, 2] if not miss_every or t % miss_every else [1, 2]
        poses = people(*[(150 + 170 * i, 200) for i in present])
        poses[..., :2] += rng.normal(0, 1.5, (len(present), 1, 2)) + rng.normal(0, 1.0, poses[..., :2].shape)
        ids |= set(tracker.update(poses).ids.tolist())
        if t >= 100:
            largest = max([largest] + [float(np.hypot(*track.velocity)) for track in tracker.tracks])
    return largest, ids


def test_velocity_of_a_still_person_stays_bounded_by_what_was_observed():
    # With camera compensation a common error of all velocities is absorbed by the
    # camera estimate; unbounded it drifts far beyond any observed motion.
    bounded, bounded_ids = _still_trio(PoseTracker(), 600, miss_every=50)
    unbounded, unbounded_ids = _still_trio(PoseTracker(velocity_bound_frames=0), 600, miss_every=50)
    assert unbounded > 6.0 and len(unbounded_ids) > 3  # the tracker before the fix: it loses IDs
    assert bounded < 4.0 and bounded_ids == {1, 2, 3}


@pytest.mark.parametrize("speed", [1.5, 4.0, 12.0])
def test_a_steady_walker_keeps_its_full_velocity(speed):
    tracker = PoseTracker()  # one walker between two people standing (a still camera)
    for t in range(12):
        tracker.update(people((100 + speed * t, 200), (300, 150), (500, 250)))
    np.testing.assert_allclose(tracker.tracks[0].velocity, [speed, 0.0], atol=1e-4)


def test_bounded_velocity_shortens_only_what_exceeds_the_observed_motion():
    from tracker.motion import bounded_velocity

    velocity = np.array([[6.0, 8.0], [1.0, 0.0], [0.0, -3.0]], np.float32)
    image_motion = np.array([[0.0, 1.0], [0.5, 0.0], [0.0, -2.5]], np.float32)
    bounded = bounded_velocity(velocity, image_motion, margin_px=1.0)
    np.testing.assert_allclose(bounded[0], [1.2, 1.6], rtol=1e-6)  # length 2 = 1 + margin, same direction
    np.testing.assert_array_equal(bounded[1:], velocity[1:])  # within |motion| + margin: unchanged
