"""Skeleton drawing through the supervision adapter."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.drawing import Trails, color_for_id, draw_poses, trail_anchors
from core.skeletons import COCO_SKELETON


def standing_person(offset_x: float = 0.0) -> np.ndarray:
    """(17, 2) px: a rough upright COCO skeleton 60 px wide, 150 px tall."""
    points = np.array(
        [[30, 10], [27, 7], [33, 7], [24, 9], [36, 9], [15, 35], [45, 35], [10, 60], [50, 60], [8, 85], [52, 85],
         [20, 90], [40, 90], [20, 120], [40, 120], [20, 150], [40, 150]],
        np.float32,
    )
    return points + np.array([offset_x + 20, 20], np.float32)


@pytest.fixture
def scene():
    return np.full((200, 260, 3), 40, np.uint8)


def test_draws_skeleton_without_touching_the_input(scene):
    original = scene.copy()
    keypoints = standing_person()[None]
    out = draw_poses(scene, keypoints, np.ones((1, 17)), COCO_SKELETON, track_ids=[1])
    np.testing.assert_array_equal(scene, original)
    assert out is not scene and out.shape == scene.shape and out.dtype == np.uint8
    # the shoulder-to-elbow edge midpoint is drawn on, far-away pixels are not
    mid = ((keypoints[0, 5] + keypoints[0, 7]) / 2).astype(int)
    assert np.any(out[mid[1], mid[0]] != 40)
    np.testing.assert_array_equal(out[195, 250], original[195, 250])


def test_low_score_keypoints_and_their_edges_are_skipped(scene):
    keypoints = standing_person()[None]
    scores = np.ones((1, 17), np.float32)
    scores[0, 9] = 0.1  # left wrist
    out = draw_poses(scene, keypoints, scores, COCO_SKELETON, track_ids=[1], keypoint_threshold=0.3, show_labels=False)
    wrist = keypoints[0, 9].astype(int)
    np.testing.assert_array_equal(out[wrist[1], wrist[0]], scene[wrist[1], wrist[0]])
    below = draw_poses(scene, keypoints, scores, COCO_SKELETON, track_ids=[1], keypoint_threshold=0.05, show_labels=False)
    assert np.any(below[wrist[1], wrist[0]] != scene[wrist[1], wrist[0]])


def test_colour_is_stable_per_track_id(scene):
    assert color_for_id(7) == color_for_id(7)
    assert color_for_id(1) != color_for_id(2)
    keypoints = np.stack([standing_person(0), standing_person(130)])
    scores = np.ones((2, 17))
    first = draw_poses(scene, keypoints, scores, COCO_SKELETON, track_ids=[3, 8], show_labels=False)
    swapped = draw_poses(scene, keypoints[::-1], scores, COCO_SKELETON, track_ids=[8, 3], show_labels=False)
    np.testing.assert_array_equal(first, swapped)  # the colour follows the ID, not the order
    nose = keypoints[0, 0].astype(int)
    assert tuple(int(v) for v in first[nose[1], nose[0]]) == color_for_id(3)


def test_boxes_labels_and_trails(scene):
    keypoints = standing_person()[None]
    box = np.array([[15, 15, 90, 185]], np.float32)
    plain = draw_poses(scene, keypoints, np.ones((1, 17)), COCO_SKELETON, track_ids=[4], show_labels=False)
    boxed = draw_poses(scene, keypoints, np.ones((1, 17)), COCO_SKELETON, track_ids=[4], boxes=box, show_boxes=True, show_labels=False)
    assert np.any(boxed[100, 15] != plain[100, 15])  # left box edge
    trails = Trails(max_length=5)
    for step in range(4):
        trails.update([4], [[150 + 20 * step, 100]])
    trailed = draw_poses(scene, keypoints, np.ones((1, 17)), COCO_SKELETON, track_ids=[4], trails=trails, show_labels=False)
    assert np.any(trailed[100, 180] != plain[100, 180])
    labelled = draw_poses(scene, keypoints, np.ones((1, 17)), COCO_SKELETON, track_ids=[4], boxes=box)
    assert np.any(labelled[5:15, 15:40] != plain[5:15, 15:40])  # "#4" above the box


def test_trails_history_and_forgetting():
    trails = Trails(max_length=3, max_idle_frames=1)
    for step in range(5):
        trails.update([1, 2], [[step, 0], [0, step]])
    np.testing.assert_array_equal(trails.points(1), [[2, 0], [3, 0], [4, 0]])
    trails.update([1], [[5, 0]])
    assert 2 in trails.track_ids  # idle for one frame: kept
    trails.update([1], [[6, 0]])
    assert trails.track_ids == [1]
    assert trails.points(2).shape == (0, 2)
    with pytest.raises(ValueError):
        trails.update([1, 2], [[0, 0]])


def test_trail_anchor_prefers_hips_then_box():
    keypoints = standing_person()[None]
    scores = np.ones((1, 17))
    np.testing.assert_allclose(trail_anchors(keypoints, scores)[0], (keypoints[0, 11] + keypoints[0, 12]) / 2)
    scores[0, 11] = 0
    np.testing.assert_allclose(trail_anchors(keypoints, scores, boxes=[[0, 0, 10, 20]])[0], [5, 10])


def test_empty_and_untracked(scene):
    out = draw_poses(scene, np.zeros((0, 17, 2)), np.zeros((0, 17)), COCO_SKELETON)
    np.testing.assert_array_equal(out, scene)
    untracked = draw_poses(scene, standing_person()[None], np.ones((1, 17)), COCO_SKELETON)
    assert np.any(untracked != scene)


def test_people_the_tracker_left_untracked_are_neutral_and_unlabelled(scene):
    keypoints = standing_person()[None]
    box = np.array([[15, 15, 90, 185]], np.float32)
    no_ids = draw_poses(scene, keypoints, np.ones((1, 17)), COCO_SKELETON, boxes=box)
    minus_one = draw_poses(scene, keypoints, np.ones((1, 17)), COCO_SKELETON, track_ids=[-1], boxes=box)
    np.testing.assert_array_equal(minus_one, no_ids)  # same neutral colour, no "#-1" label
    tracked = draw_poses(scene, keypoints, np.ones((1, 17)), COCO_SKELETON, track_ids=[4], boxes=box)
    assert np.any(tracked[5:15, 15:40] != minus_one[5:15, 15:40])


def test_mismatched_lengths_are_errors(scene):
    with pytest.raises(ValueError, match="track ids"):
        draw_poses(scene, standing_person()[None], np.ones((1, 17)), COCO_SKELETON, track_ids=[1, 2])
    with pytest.raises(ValueError, match="scores"):
        draw_poses(scene, standing_person()[None], np.ones((1, 16)), COCO_SKELETON)
