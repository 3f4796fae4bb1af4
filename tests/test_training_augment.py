"""The official training augmentation (FACTS section 7), the sample pipeline and the layouts, draw by draw."""

from __future__ import annotations

import numpy as np
import pytest

from core.skeletons import COCO_FLIP_PAIRS, MPII_FLIP_PAIRS
from pose.codec import gaussian_target
from pose.training.augment import AugmentSettings, augment, half_body_box, sample_generator
from pose.training.layouts import builtin_layout, layout_from_category, layout_from_names, load_layout_yaml
from pose.transforms import box_to_center_scale, fliplr_joints, get_affine_transform

COCO = AugmentSettings(scale_factor=0.35, rot_factor=45.0, flip=True, prob_half_body=0.3,
                       num_joints_half_body=8, aspect_ratio=0.75)
UPPER = builtin_layout("coco").upper_body


class ScriptedRng:
    """Stands in for numpy's Generator: returns scripted values and records which draw was asked for."""

    def __init__(self, normals=(), uniforms=()):
        self.normals, self.uniforms, self.calls = list(normals), list(uniforms), []

    def standard_normal(self):
        self.calls.append("randn")
        return self.normals.pop(0)

    def random(self):
        self.calls.append("rand")
        return self.uniforms.pop(0)


def _person(num_visible=17, seed=0):
    rng = np.random.default_rng(seed)
    joints = np.zeros((17, 3))
    joints[:, :2] = rng.uniform(50, 250, size=(17, 2))
    vis = np.zeros((17, 3))
    vis[:num_visible, :2] = 1
    center, scale = box_to_center_scale([40, 40, 220, 220], 0.75)
    return center, scale, joints, vis


def test_builtin_layouts_are_the_official_half_body_sets():
    assert builtin_layout("coco").upper_body == tuple(range(11))
    assert builtin_layout("coco").lower_body == tuple(range(11, 17))
    assert builtin_layout("coco").flip_pairs == COCO_FLIP_PAIRS
    assert builtin_layout("mpii").upper_body == tuple(range(7, 16))
    assert builtin_layout("mpii").lower_body == tuple(range(7))
    assert builtin_layout("mpii").flip_pairs == MPII_FLIP_PAIRS


def test_scale_rotation_and_flip_follow_the_official_formulas():
    center, scale, joints, vis = _person()
    # half-body test draws rand() = 0.9 (>= 0.3: no half body); randn 0.5 for scale, rand 0.6 (<= 0.6: rotate),
    # randn 3.0 for the rotation (clipped to 2 x 45), rand 0.5 (<= 0.5: flip).
    rng = ScriptedRng(normals=[0.5, 3.0], uniforms=[0.9, 0.6, 0.5])
    out = augment(center, scale, joints, vis, 640, COCO, UPPER, COCO_FLIP_PAIRS, rng)
    assert rng.calls == ["rand", "randn", "rand", "randn", "rand"]
    np.testing.assert_allclose(out.scale, scale * (0.5 * 0.35 + 1), rtol=1e-6)
    assert out.rotation == 90.0
    assert out.flipped
    assert out.center[0] == pytest.approx(640 - center[0] - 1)
    expected_joints, expected_vis = fliplr_joints(joints, vis, 640, COCO_FLIP_PAIRS)
    np.testing.assert_array_equal(out.joints, expected_joints)
    np.testing.assert_array_equal(out.joints_vis, expected_vis)
    # The record's arrays are not modified (the official code mutates its db centre in place).
    assert center[0] != out.center[0]


def test_scale_is_clipped_and_rotation_and_flip_are_skipped_above_their_probabilities():
    center, scale, joints, vis = _person()
    rng = ScriptedRng(normals=[-9.0], uniforms=[0.9, 0.61, 0.51])
    out = augment(center, scale, joints, vis, 640, COCO, UPPER, COCO_FLIP_PAIRS, rng)
    assert rng.calls == ["rand", "randn", "rand", "rand"]  # no rotation draw when not rotating
    np.testing.assert_allclose(out.scale, scale * (1 - 0.35), rtol=1e-6)
    assert out.rotation == 0.0 and not out.flipped


def test_flip_off_in_the_config_never_flips():
    center, scale, joints, vis = _person()
    settings = AugmentSettings(0.35, 45.0, False, 0.3, 8, 0.75)
    rng = ScriptedRng(normals=[0.0], uniforms=[0.9, 0.9])
    assert not augment(center, scale, joints, vis, 640, settings, UPPER, COCO_FLIP_PAIRS, rng).flipped


def test_half_body_needs_more_than_the_threshold_of_visible_joints():
    center, scale, joints, vis = _person(num_visible=8)
    rng = ScriptedRng(normals=[0.0], uniforms=[0.9, 0.9])
    augment(center, scale, joints, vis, 640, COCO, UPPER, COCO_FLIP_PAIRS, rng)
    assert rng.calls[0] == "randn"  # 8 visible joints: the half-body coin is never thrown


@pytest.mark.parametrize("normal, expected_set", [(0.4, "upper"), (0.6, "lower")])
def test_half_body_box_is_the_chosen_sets_aspect_corrected_extent_times_1_5(normal, expected_set):
    _, _, joints, vis = _person()
    ids = list(range(11)) if expected_set == "upper" else list(range(11, 17))
    center, scale = half_body_box(joints, vis, UPPER, 0.75, ScriptedRng(normals=[normal]))
    chosen = joints[ids, :2].astype(np.float32)
    np.testing.assert_allclose(center, chosen.mean(0), rtol=1e-6)
    w, h = chosen.max(0) - chosen.min(0)
    w, h = (w, w / 0.75) if w > 0.75 * h else (h * 0.75, h)
    np.testing.assert_allclose(scale, np.array([w, h]) / 200 * 1.5, rtol=1e-5)


def test_half_body_falls_back_to_the_upper_set_and_gives_up_below_two_joints():
    _, _, joints, vis = _person()
    vis[11:] = 0  # no lower body
    center, _ = half_body_box(joints, vis, UPPER, 0.75, ScriptedRng(normals=[0.9]))
    np.testing.assert_allclose(center, joints[:11, :2].astype(np.float32).mean(0), rtol=1e-6)
    vis[:] = 0
    vis[0] = 1
    assert half_body_box(joints, vis, UPPER, 0.75, ScriptedRng(normals=[0.0])) is None


def test_probabilities_over_many_draws():
    """Half-body 0.3 (upper about 69 %), rotation 0.6, flip 0.5, scale within 1 +- 0.35, rotation within +-90."""
    center, scale, joints, vis = _person()
    count = 4000
    half, upper, rotated, flipped, scales, rotations = 0, 0, 0, 0, [], []
    upper_center = joints[:11, :2].astype(np.float32).mean(0)
    for index in range(count):
        out = augment(center, scale, joints, vis, 640, COCO, UPPER, COCO_FLIP_PAIRS, sample_generator(3, 0, index))
        unflipped_center = out.center.copy()
        if out.flipped:
            unflipped_center[0] = 640 - out.center[0] - 1
        if not np.allclose(unflipped_center, center):
            half += 1
            upper += np.allclose(unflipped_center, upper_center, atol=1e-3)
        else:
            scales.append(out.scale[0] / scale[0])
        rotated += out.rotation != 0
        flipped += out.flipped
        rotations.append(out.rotation)
    assert half / count == pytest.approx(0.3, abs=0.03)
    assert upper / half == pytest.approx(0.691, abs=0.05)  # P(randn < 0.5)
    assert rotated / count == pytest.approx(0.6, abs=0.03)
    assert flipped / count == pytest.approx(0.5, abs=0.03)
    assert min(scales) >= 0.65 - 1e-6 and max(scales) <= 1.35 + 1e-6
    assert max(abs(r) for r in rotations) <= 90


def test_sample_generator_depends_on_seed_epoch_and_index_only():
    a = sample_generator(1, 2, 3).standard_normal(4)
    np.testing.assert_array_equal(a, sample_generator(1, 2, 3).standard_normal(4))
    for other in ((0, 2, 3), (1, 1, 3), (1, 2, 4)):
        assert not np.array_equal(a, sample_generator(*other).standard_normal(4))


def test_layout_from_names_pairs_left_and_right_and_splits_the_body():
    layout = layout_from_names(["head", "left_hand", "right_hand", "l_foot", "r_foot"])
    assert layout.flip_pairs == ((1, 2), (3, 4))
    assert layout.upper_body == (0, 1, 2)


def test_layout_of_the_coco_person_category_is_the_official_one():
    from core.skeletons import COCO_KEYPOINT_NAMES

    assert layout_from_category({"name": "person", "keypoints": list(COCO_KEYPOINT_NAMES)}) == builtin_layout("coco")


def test_layout_yaml(tmp_path):
    path = tmp_path / "hand.yaml"
    path.write_text("keypoints: [a, b, c]\nflip_pairs: [[1, 2]]\nupper_body: [0]\n")
    layout = load_layout_yaml(path)
    assert layout.names == ("a", "b", "c") and layout.flip_pairs == ((1, 2),) and layout.upper_body == (0,)
    path.write_text("keypoints: [a, b]\nflip_pairs: [[1, 5]]\n")
    with pytest.raises(ValueError, match="hand.yaml"):
        load_layout_yaml(path)
    path.write_text("keypoints: [a]\ncolour: red\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_layout_yaml(path)


def test_gaussian_target_of_transformed_joints_is_what_the_dataset_yields(tmp_path):
    """A non-augmented sample: crop by the record's box, joints through the crop matrix, official targets."""
    import cv2

    from pose import load_config
    from pose.training.dataset import TopDownDataset
    from pose.training.records import PersonRecord

    config = load_config("tests/data/trained/synthetic_w16_64x48.yaml")
    image = np.random.default_rng(0).integers(0, 255, size=(120, 100, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    center, scale, joints, vis = _person()
    joints[:, :2] = joints[:, :2] * 0.4
    center, scale = box_to_center_scale([10, 10, 80, 100], 48 / 64)
    record = PersonRecord(str(tmp_path / "a.png"), center, scale, joints, vis)
    item = TopDownDataset([record], config, builtin_layout("coco"), train=False)[0]
    matrix = get_affine_transform(center, scale, 0, (48, 64))
    moved = joints.copy()
    moved[:, :2] = joints[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    target, weight = gaussian_target(moved, vis, (48, 64), (12, 16), 2.0)
    np.testing.assert_array_equal(item["target"].numpy(), target)
    np.testing.assert_array_equal(item["target_weight"].numpy(), weight)
    assert item["input"].shape == (3, 64, 48)
