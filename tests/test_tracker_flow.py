"""Optical-flow propagation: Lucas-Kanade keypoint moves and recovery of missed people."""

from __future__ import annotations

import numpy as np
import pytest

from tracker import PoseTracker
from tracker.flow import propagate_keypoints, to_gray
from evaluation.scenes import DetectorNoise, make_scene, standing_pose


def _blocky_texture(rng, height, width, cell=4, low=0, high=256):
    coarse = rng.integers(low, high, size=(height // cell + 1, width // cell + 1, 3))
    return np.repeat(np.repeat(coarse, cell, 0), cell, 1)[:height, :width].astype(np.uint8)


def _frame(background, person_texture, hip_xy, height_px=120):
    """BGR frame: `person_texture` pasted as a rigid patch around the person's box."""
    image = background.copy()
    pose = standing_pose(hip_xy, height_px)
    x1, y1 = np.floor(pose[:, :2].min(axis=0) - 8).astype(int)
    x2, y2 = np.ceil(pose[:, :2].max(axis=0) + 8).astype(int)
    image[y1:y2, x1:x2] = person_texture[: y2 - y1, : x2 - x1]
    return image, pose


def test_propagate_keypoints_follows_a_shifted_texture():
    rng = np.random.default_rng(0)
    texture = _blocky_texture(rng, 300, 400)
    previous, current = texture[10:250, 10:330], texture[7:247, 5:325]  # content moves by (+5, +3) px
    keypoints = standing_pose((160, 120), 150)[None]
    outside = keypoints.copy()
    outside[0, 0, :2] = (318.0, 5.0)  # will move out of the frame
    moved, tracked = propagate_keypoints(to_gray(previous), to_gray(current), np.concatenate([keypoints, outside]))
    np.testing.assert_allclose(moved[0, :, :2] - keypoints[0, :, :2], np.tile([5.0, 3.0], (17, 1)), atol=0.3)
    assert tracked[0].all()
    assert not tracked[1, 0]
    np.testing.assert_array_equal(moved[..., 2], np.concatenate([keypoints, outside])[..., 2])


def test_flow_recovers_a_person_the_detector_missed():
    rng = np.random.default_rng(1)
    background = _blocky_texture(rng, 360, 640, low=40, high=120)
    person = _blocky_texture(rng, 200, 100, low=120, high=255)
    other = standing_pose((500, 200), 110)
    positions = [(200 + 4 * t, 180) for t in range(6)]

    def run(tracker, missing_frame=3):
        outputs = []
        for t, hip in enumerate(positions):
            image, pose = _frame(background, person, hip)
            poses = np.stack([other]) if t == missing_frame else np.stack([pose, other])
            outputs.append((tracker.update(poses, frame=image), pose))
        return outputs

    outputs = run(PoseTracker(flow=True))
    recovered, truth = outputs[3]
    assert recovered.ids.tolist() == [2]
    assert recovered.track_ids.tolist() == [2, 1]
    assert recovered.detection_index.tolist() == [0, -1]
    assert recovered.propagated.tolist() == [False, True]
    error = np.abs(recovered.keypoints[1, :, :2] - truth[:, :2]).max()
    assert error < 1.5, f"recovered pose is {error:.1f} px off"
    assert outputs[4][0].ids.tolist() == [1, 2]  # re-detected: same ID

    without_flow = run(PoseTracker(flow=False))
    assert without_flow[3][0].track_ids.tolist() == [2]
    assert without_flow[4][0].ids.tolist() == [1, 2]  # coasting still keeps the ID


def test_a_recovered_pose_covered_by_a_detection_is_suppressed():
    """OKS-NMS, detections first: a shown detection on the propagated pose wins, no duplicate."""
    rng = np.random.default_rng(2)
    background = _blocky_texture(rng, 360, 640)
    person = _blocky_texture(rng, 200, 100)

    def run(tracker, score):
        for t in range(3):
            image, pose = _frame(background, person, (200 + 4 * t, 180))
            tracker.update(pose[None], frame=image)
        image, pose = _frame(background, person, (212, 180))
        # The same person, detected 3 px off: OKS about 0.9, too far for this
        # strict tracker to match (threshold 0.97), but the same person for the NMS.
        pose[:, 0] += 3.0
        return tracker.update(pose[None], scores=[score], frame=image)

    result = run(PoseTracker(flow=True, similarity_threshold=0.97), score=0.9)
    assert result.track_ids.tolist() == [2] and not result.propagated.any()
    # An ignored low-score detection is not shown, so it does not suppress the recovered pose.
    result = run(PoseTracker(flow=True, similarity_threshold=0.97, low_score_matching=False), score=0.3)
    assert result.track_ids.tolist() == [1] and result.propagated.all()


def test_flow_without_frames_falls_back_to_motion_only():
    tracker = PoseTracker(flow=True)
    for t in range(4):
        ids = tracker.update(standing_pose((100 + 4 * t, 200))[None]).ids
    assert ids.tolist() == [1]


@pytest.mark.parametrize("name", ["walking", "crowd"])
def test_flow_reduces_misses_on_rendered_scenes(name):
    from evaluation.tracking import evaluate_scene

    scene = make_scene(name, seed=3, num_frames=60, render=True, noise=DetectorNoise(miss_rate=0.05))
    with_flow = evaluate_scene(scene, lambda: PoseTracker(flow=True), use_images=True)
    without = evaluate_scene(scene, PoseTracker)
    assert with_flow.num_misses < 0.5 * without.num_misses
    assert with_flow.mota > without.mota
