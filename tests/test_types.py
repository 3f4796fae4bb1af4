"""Indexing the typed results: `poses[poses.box_scores > t]`, `poses[1:3]`,
`poses[[0, 2]]` select people and keep every per-person field in step."""

import numpy as np
import pytest

from core.types import Detections, Poses, TrackedPoses

K = 17


def _poses(count: int = 4) -> Poses:
    # person i has every value derived from i, so a mixed-up field shows up
    people = np.arange(count, dtype=np.float32)
    keypoints = people[:, None, None] * 100 + np.arange(K * 2, dtype=np.float32).reshape(1, K, 2)
    scores = np.repeat(people[:, None] / 10, K, axis=1)
    boxes = people[:, None] * 10 + np.array([0, 0, 5, 8], np.float32)
    return Poses(keypoints, scores, boxes, people / count)


def _tracked(count: int = 4) -> TrackedPoses:
    base = _poses(count)
    return TrackedPoses(base.keypoints, base.scores, base.boxes, base.box_scores,
                        track_ids=np.arange(count) + 7, detection_index=np.array([0, -1, 2, 3][:count]))


def _people(poses: Poses) -> list[int]:
    """Which original people `poses` holds, read back from every field."""
    from_keypoints = (poses.keypoints[:, 0, 0] / 100).round().astype(int).tolist()
    assert (poses.scores[:, 0] * 10).round().astype(int).tolist() == from_keypoints
    assert (poses.boxes[:, 0] / 10).round().astype(int).tolist() == from_keypoints
    if isinstance(poses, TrackedPoses):
        assert (poses.track_ids - 7).tolist() == from_keypoints
    return from_keypoints


@pytest.mark.parametrize("make", [_poses, _tracked])
@pytest.mark.parametrize("index, expected", [
    (np.array([True, False, True, True]), [0, 2, 3]),
    (slice(1, 3), [1, 2]),
    ([0, 2], [0, 2]),
    (np.array([3, 0]), [3, 0]),
    ([-1], [3]),
    (2, [2]),
    (-1, [3]),
    ([], []),
    (np.zeros(4, bool), []),
])
def test_indexing_selects_people_in_every_field(make, index, expected):
    poses = make()
    picked = poses[index]
    assert type(picked) is type(poses)
    assert _people(picked) == expected
    assert picked.keypoints.shape == (len(expected), K, 2)
    assert picked.num_keypoints == K


def test_mask_from_scores_filters_like_supervision():
    poses = _tracked()
    confident = poses[poses.box_scores > 0.3]
    assert _people(confident) == [2, 3]
    np.testing.assert_array_equal(confident.detection_index, [2, 3])
    np.testing.assert_array_equal(confident.box_scores, poses.box_scores[2:])


def test_indexing_copies_do_not_touch_the_original():
    poses = _tracked()
    picked = poses[[1]]
    picked.keypoints[:] = -1
    assert _people(poses) == [0, 1, 2, 3]


def test_empty_poses_accept_an_empty_mask():
    empty = TrackedPoses.empty()
    assert len(empty[empty.box_scores > 0.5]) == 0
    assert len(empty[:]) == 0


@pytest.mark.parametrize("index, error, message", [
    (np.array([True, False]), IndexError, "2 entries for 4 people"),
    (4, IndexError, "out of range"),
    ([0, 9], IndexError, "out of range"),
    (np.array([0.5]), IndexError, "integers"),
    ((0, 1), TypeError, "one index"),
])
def test_bad_indices_are_clear_errors(index, error, message):
    with pytest.raises(error, match=message):
        _poses()[index]


def test_detections_keep_exact_boxes_in_step():
    exact = np.array([[0, 0, 10, 20], [5, 5, 1, 1], [1, 2, 3, 4]], np.float64) + 0.123456789
    corners = np.concatenate([exact[:, :2], exact[:, :2] + exact[:, 2:]], axis=1)
    detections = Detections(corners, [0.9, 0.2, 0.5], boxes_xywh=exact)
    kept = detections[detections.scores > 0.4]
    np.testing.assert_array_equal(kept.scores, np.float32([0.9, 0.5]))
    np.testing.assert_array_equal(kept.boxes_xywh, exact[[0, 2]])
    assert kept.boxes_xywh.dtype == np.float64
    one = detections[1]
    assert one.boxes.shape == (1, 4) and one.boxes_xywh.shape == (1, 4)
    network = Detections(detections.boxes, detections.scores)
    assert network[1:].boxes_xywh is None
