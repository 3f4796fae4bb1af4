"""OKS / IoU matrices and the greedy and Hungarian matchers."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.matching import greedy_match, hungarian_match, match
from tracker.similarity import COCO_SIGMAS, boxes_from_keypoints, box_areas, iou_matrix, oks_matrix, pose_similarity


def _random_poses(rng, n, spread=200.0, confidence_low=0.0):
    centres = rng.uniform(0, spread, (n, 1, 2))
    xy = centres + rng.normal(0, 20, (n, 17, 2))
    confidence = rng.uniform(confidence_low, 1, (n, 17, 1))
    return np.concatenate([xy, confidence], axis=2).astype(np.float32)


def _oks_reference(a, b, area_a, area_b, threshold):
    """Loop-per-pair COCO formula, written independently of the vectorised one."""
    variances = (2 * COCO_SIGMAS.astype(np.float64)) ** 2
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            both = (a[i, :, 2] >= threshold) & (b[j, :, 2] >= threshold)
            if not both.any():
                continue
            d2 = ((a[i, :, :2].astype(np.float64) - b[j, :, :2]) ** 2).sum(axis=1)
            scale = (area_a[i] + area_b[j]) / 2
            out[i, j] = np.exp(-d2 / variances / scale / 2)[both].mean()
    return out


def test_oks_matrix_matches_the_per_pair_coco_formula():
    rng = np.random.default_rng(0)
    a, b = _random_poses(rng, 7), _random_poses(rng, 5)
    area_a = box_areas(boxes_from_keypoints(a, 0.3))
    area_b = box_areas(boxes_from_keypoints(b, 0.3))
    oks, shared = oks_matrix(a, b, area_a, area_b, keypoint_threshold=0.3)
    np.testing.assert_allclose(oks, _oks_reference(a, b, area_a, area_b, 0.3), atol=1e-5)
    expected_shared = ((a[:, None, :, 2] >= 0.3) & (b[None, :, :, 2] >= 0.3)).sum(axis=2)
    np.testing.assert_array_equal(shared, expected_shared)


def test_oks_of_identical_poses_is_one_and_drops_with_distance():
    rng = np.random.default_rng(1)
    pose = _random_poses(rng, 1, confidence_low=0.9)
    area = box_areas(boxes_from_keypoints(pose, 0.3))
    poses = np.repeat(pose, 4, axis=0)
    poses[:, :, 0] += np.array([0.0, 5.0, 20.0, 80.0])[:, None]
    oks, _ = oks_matrix(pose, poses, area, np.repeat(area, 4))
    assert oks[0, 0] == pytest.approx(1.0)
    assert np.all(np.diff(oks[0]) < 0)


def test_far_apart_poses_get_zero_oks():
    rng = np.random.default_rng(2)
    a = _random_poses(rng, 3, confidence_low=0.5)
    b = a.copy()
    b[..., 0] += 5000.0
    oks, _ = oks_matrix(a, b, np.full(3, 900.0, np.float32), np.full(3, 900.0, np.float32))
    assert np.all(oks == 0)


def test_unconfident_keypoints_are_left_out():
    pose = _random_poses(np.random.default_rng(3), 1, confidence_low=0.9)
    other = pose.copy()
    other[0, :5, :2] += 300.0  # the face is far off ...
    other[0, :5, 2] = 0.1  # ... but not confident, so it must not count
    area = np.array([5000.0], np.float32)
    oks, shared = oks_matrix(pose, other, area, area, keypoint_threshold=0.3)
    assert shared[0, 0] == 12
    assert oks[0, 0] == pytest.approx(1.0)


def test_few_shared_keypoints_fall_back_to_box_iou():
    pose = _random_poses(np.random.default_rng(4), 1, confidence_low=0.9)
    other = pose.copy()
    other[0, 2:, 2] = 0.0  # only two confident keypoints left
    boxes_a = np.array([[0, 0, 10, 10]], np.float32)
    boxes_b = np.array([[5, 0, 15, 10]], np.float32)
    area = np.array([100.0], np.float32)
    similarity = pose_similarity(pose, boxes_a, area, other, boxes_b, area, kind="oks", min_shared_keypoints=3)
    assert similarity[0, 0] == pytest.approx(1 / 3)  # the IoU, not the (perfect) OKS
    similarity = pose_similarity(pose, boxes_a, area, other, boxes_b, area, kind="oks", min_shared_keypoints=2)
    assert similarity[0, 0] == pytest.approx(1.0)


def test_iou_matrix_and_mix():
    boxes_a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    boxes_b = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [100, 100, 110, 110]], np.float32)
    iou = iou_matrix(boxes_a, boxes_b)
    np.testing.assert_allclose(iou, [[1, 25 / 175, 0], [0, 0, 0]], atol=1e-6)
    assert iou_matrix(boxes_a[:0], boxes_b).shape == (0, 3)
    pose = _random_poses(np.random.default_rng(5), 2, confidence_low=0.9)
    areas = box_areas(boxes_a)
    mix = pose_similarity(pose, boxes_a, areas, pose, boxes_a, areas, kind="mix", oks_weight=0.25)
    np.testing.assert_allclose(np.diag(mix), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="similarity kind"):
        pose_similarity(pose, boxes_a, areas, pose, boxes_a, areas, kind="cosine")


def _greedy_reference(similarity, threshold):
    rows, columns = np.nonzero(similarity >= threshold)
    order = np.argsort(-similarity[rows, columns], kind="stable")
    used_rows, used_columns, pairs = set(), set(), []
    for index in order:
        r, c = rows[index], columns[index]
        if r not in used_rows and c not in used_columns:
            used_rows.add(r)
            used_columns.add(c)
            pairs.append((int(r), int(c)))
    return sorted(pairs)


@pytest.mark.parametrize("seed", range(20))
def test_greedy_is_best_pair_first(seed):
    rng = np.random.default_rng(seed)
    similarity = rng.random(tuple(rng.integers(1, 9, 2)))
    assert sorted(map(tuple, greedy_match(similarity, 0.3).tolist())) == _greedy_reference(similarity, 0.3)


def test_greedy_is_not_detection_order_greedy():
    # MMPose's sequential greedy gives detection 0 its best track (0) first;
    # best-pair-first gives track 0 to detection 1, which fits it better.
    similarity = np.array([[0.6, 0.9], [0.5, 0.1]])  # rows: tracks, columns: detections
    assert sorted(map(tuple, greedy_match(similarity, 0.3).tolist())) == [(0, 1), (1, 0)]


def test_hungarian_and_greedy_agree_on_an_unambiguous_case():
    similarity = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.0, 0.3, 0.95], [0.1, 0.1, 0.2]])
    greedy = sorted(map(tuple, match(similarity, 0.3, "greedy").tolist()))
    hungarian = sorted(map(tuple, match(similarity, 0.3, "hungarian").tolist()))
    assert greedy == hungarian == [(0, 0), (1, 1), (2, 2)]


def test_hungarian_maximises_the_total_where_greedy_does_not():
    similarity = np.array([[0.9, 0.8], [0.8, 0.0]])
    assert sorted(map(tuple, greedy_match(similarity, 0.3).tolist())) == [(0, 0)]
    assert sorted(map(tuple, hungarian_match(similarity, 0.3).tolist())) == [(0, 1), (1, 0)]


@pytest.mark.parametrize("method", ["greedy", "hungarian"])
def test_matchers_respect_the_threshold_and_empty_input(method):
    similarity = np.array([[0.29, 0.1], [0.05, 0.31]])
    assert match(similarity, 0.3, method).tolist() == [[1, 1]]
    assert match(np.zeros((0, 3)), 0.3, method).shape == (0, 2)
    assert match(np.zeros((3, 0)), 0.3, method).shape == (0, 2)


def test_unknown_matcher_raises():
    with pytest.raises(ValueError, match="matching method"):
        match(np.ones((1, 1)), 0.3, "auction")


def test_fully_confident_poses_skip_the_shared_count_matrix_with_the_same_oks():
    # Every keypoint confident: any two poses share all of them, so the tracker's
    # fast path builds no shared-count matrix. The values must not change.
    from tracker.similarity import PoseSet, oks_exponent_factors, similarity_between, surely_share

    rng = np.random.default_rng(3)
    a, b = _random_poses(rng, 9, confidence_low=0.5), _random_poses(rng, 6, confidence_low=0.5)
    area_a = box_areas(boxes_from_keypoints(a, 0.3))
    area_b = box_areas(boxes_from_keypoints(b, 0.3))
    poses_a, poses_b = PoseSet.from_keypoints(a, 0.3), PoseSet.from_keypoints(b, 0.3)
    assert surely_share(poses_a, poses_b, 3)
    fast = similarity_between(poses_a, boxes_from_keypoints(a, 0.3), area_a, poses_b, boxes_from_keypoints(b, 0.3),
                              area_b, kind="oks", oks_weight=0.5, exponent_factors=oks_exponent_factors(COCO_SIGMAS),
                              min_shared_keypoints=3)
    np.testing.assert_allclose(fast, _oks_reference(a, b, area_a, area_b, 0.3), atol=1e-5)
    np.testing.assert_array_equal(fast, oks_matrix(a, b, area_a, area_b, keypoint_threshold=0.3)[0])
    # One pose with a single confident keypoint: pairs may share none, so the matrix is needed.
    b[0, 1:, 2] = 0.0
    assert not surely_share(poses_a, PoseSet.from_keypoints(b, 0.3), 3)


@pytest.mark.parametrize("seed", range(5))
def test_greedy_pairs_take_the_best_remaining_pair_first(seed):
    from tracker.matching import greedy_pairs

    similarity = np.random.default_rng(seed).random((12, 9)).astype(np.float32)
    taken_rows, taken_columns, expected = set(), set(), []
    for flat in np.argsort(-similarity, axis=None, kind="stable"):
        row, column = divmod(int(flat), similarity.shape[1])
        if similarity[row, column] >= 0.3 and row not in taken_rows and column not in taken_columns:
            taken_rows.add(row)
            taken_columns.add(column)
            expected.append((row, column))
    rows, columns = greedy_pairs(similarity, 0.3)
    assert rows.dtype == np.int64 and columns.dtype == np.int64
    assert sorted(zip(rows.tolist(), columns.tolist())) == sorted(expected)
