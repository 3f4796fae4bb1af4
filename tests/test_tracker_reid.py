"""Re-identification by appearance (`TrackerOptions.reid`, issue 23).

Fast tests draw people as blocks of shirt and trouser colour around
`evaluation.scenes.Walker` poses; the scene tests (slow) use the clothed
people of `evaluation.dressed_scenes`.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np
import pytest

from evaluation.dressed_scenes import make_dressed_scene, reidentified
from evaluation.scenes import Walker, make_scene
from evaluation.tracking import evaluate_scene
from tracker import PoseTracker, TrackerOptions
from tracker.appearance import PartColourEncoder, appearance_distance
from tracker.reid import GalleryMemory, merge_views
from tracker.appearance import Appearance

WIDTH, HEIGHT = 640, 360
RED, BLUE, GREEN, YELLOW = (40, 40, 200), (190, 60, 30), (40, 170, 40), (30, 200, 220)


def _pose(x: float, y: float = 180.0, height: float = 120.0, confidence: float = 0.9) -> np.ndarray:
    """(17, 3) a standing COCO pose with its mid-hip at (x, y) px."""
    walker = Walker(1, height, np.array([[x, y]], np.float32))
    return np.concatenate([walker.poses[0], np.full((17, 1), confidence, np.float32)], axis=1)


@functools.lru_cache(maxsize=1)
def _background() -> np.ndarray:
    return np.random.default_rng(0).integers(90, 130, (HEIGHT, WIDTH, 3)).astype(np.uint8)


def _frame(people, gain: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8: a grey textured background and, per (pose, shirt, trousers),
    shirt colour from the head to the hips and trouser colour below, around the pose."""
    image = _background().copy()
    for pose, shirt, trousers in people:
        x1, y1 = np.floor(pose[:, :2].min(axis=0)).astype(int) - 6
        x2, y2 = np.ceil(pose[:, :2].max(axis=0)).astype(int) + 6
        hips = int(round(pose[11:13, 1].mean()))
        x1, x2 = max(x1, 0), min(x2, WIDTH)
        image[max(y1, 0):hips, x1:x2] = shirt
        image[hips:min(y2, HEIGHT), x1:x2] = trousers
    return image if gain == 1.0 else np.clip(image * gain, 0, 255).astype(np.uint8)


def _encode(frame, poses):
    poses = np.asarray(poses, np.float32).reshape(-1, 17, 3)
    return PartColourEncoder().encode(frame, poses, np.zeros((len(poses), 4), np.float32), 0.3)


def _distance(a: Appearance, b: Appearance) -> float:
    return float(appearance_distance(a.features, a.seen, b.features, b.seen, PartColourEncoder.distance_scale)[0, 0])


def test_same_clothes_are_near_under_other_light_and_other_clothes_far():
    left, right = _pose(150), _pose(450)
    bright = _encode(_frame([(left, RED, BLUE), (right, GREEN, YELLOW)]), [left, right])
    dim = _encode(_frame([(left, RED, BLUE), (right, GREEN, YELLOW)], gain=0.7), [left, right])
    assert bright.seen.all()
    assert _distance(bright.take([0]), dim.take([0])) < 0.1  # ratios: a global gain barely changes them
    assert _distance(bright.take([0]), bright.take([1])) > 1.0
    swapped = _encode(_frame([(left, BLUE, RED)]), [left])  # same colours, other garments
    assert _distance(bright.take([0]), swapped) > 0.5


def test_unconfident_and_out_of_frame_parts_are_not_seen():
    legs_hidden = _pose(150)
    legs_hidden[11:17, 2] = 0.05
    legs_hidden[11:13, 2] = 0.9  # hips seen, knees and ankles not: no thighs, no shins
    cut = _pose(300, y=330)  # the shins below the bottom of the image
    encoded = _encode(_frame([(legs_hidden, RED, BLUE), (cut, RED, BLUE)]), [legs_hidden, cut])
    assert encoded.seen[0].tolist() == [True, True, True, False, False]
    assert encoded.seen[1, :4].all() and not encoded.seen[1, 4]


def test_a_part_colour_descriptor_needs_coco_keypoints():
    with pytest.raises(ValueError, match="17 COCO keypoints"):
        PoseTracker(reid="appearance", sigmas=(0.05,) * 5)


def _leave_and_return(tracker, frames_away: int, look_alike_in_view: bool = False, back_at: float = 200.0):
    """Person A (red over blue) walks at x 100..., B (green over yellow) stands at 500;
    A vanishes for frames_away frames and reappears at back_at. Returns (A's ID before, A's ID after)."""
    b = _pose(500)
    ids_before = None
    for t in range(40):
        a = _pose(100 + 2 * t)
        result = tracker.update(np.stack([a, b]), frame=_frame([(a, RED, BLUE), (b, GREEN, YELLOW)]))
        ids_before = result.ids
    for _ in range(frames_away):
        people = [(b, GREEN, YELLOW)]
        poses = [b]
        if look_alike_in_view:
            twin = _pose(350)
            people.append((twin, RED, BLUE))
            poses.append(twin)
        tracker.update(np.stack(poses), frame=_frame(people))
    a = _pose(back_at)
    people, poses = [(a, RED, BLUE), (b, GREEN, YELLOW)], [a, b]
    if look_alike_in_view:
        people.append((_pose(350), RED, BLUE))
        poses.append(_pose(350))
    result = tracker.update(np.stack(poses), frame=_frame(people))
    assert result.ids[1] == ids_before[1]  # B kept its ID all along
    return int(ids_before[0]), int(result.ids[0])


def test_a_person_back_after_three_seconds_gets_the_old_id():
    before, after = _leave_and_return(PoseTracker(reid="appearance"), frames_away=90)
    assert after == before
    before, after = _leave_and_return(PoseTracker(), frames_away=90)  # keypoint-only forgets after max_age
    assert after != before


def test_no_reidentification_when_a_look_alike_is_in_view():
    before, after = _leave_and_return(PoseTracker(reid="appearance"), frames_away=90, look_alike_in_view=True)
    assert after != before


def test_no_reidentification_after_the_memory_or_too_far_for_the_gap():
    before, after = _leave_and_return(PoseTracker(reid="appearance", reid_memory_s=2.0), frames_away=90)
    assert after != before
    # 100 px from where A was lost, 40 frames later: plausible; at 2 heights a second, 40
    # frames allow 1 + 2.7 heights (about 450 px), so 600 px away is not.
    before, after = _leave_and_return(PoseTracker(reid="appearance"), frames_away=40, back_at=180.0)
    assert after == before
    before, after = _leave_and_return(PoseTracker(reid="appearance", reid_max_speed=0.5), frames_away=40,
                                      back_at=600.0)
    assert after != before


def test_reset_forgets_the_galleries():
    tracker = PoseTracker(reid="appearance")
    _leave_and_return(tracker, frames_away=40)
    tracker.reset()
    a = _pose(200)
    assert tracker.update(a[None], frame=_frame([(a, RED, BLUE)])).ids.tolist() == [1]


def test_galleries_keep_a_bounded_number_of_prototypes_and_memories():
    rng = np.random.default_rng(0)
    features = np.zeros((1, 3, 5, 5), np.float32)
    weights = np.zeros((1, 3, 5), np.float32)
    for _ in range(20):  # far-apart views: new prototypes until full, then the nearest one
        merge_views(features, weights, Appearance(rng.normal(0, 5, (1, 5, 5)).astype(np.float32),
                                                  np.ones((1, 5), bool)), 0.6, 0.1)
    assert (weights.sum(axis=2) > 0).all() and weights.sum() == 20 * 5
    memory = GalleryMemory.empty((3, 5, 5))
    for frame in range(10):
        memory.add(np.array([frame]), features, weights, np.array([frame]), np.zeros((1, 2), np.float32),
                   np.ones(1, np.float32), max_count=4)
    assert memory.ids.tolist() == [6, 7, 8, 9]
    memory.forget_before(8)
    assert memory.ids.tolist() == [8, 9]


@pytest.mark.parametrize("name", ["crossing", "occlusion", "crowd"])
def test_keypoint_only_tracking_is_unchanged(name):
    scene = make_scene(name, seed=0, num_frames=80)
    plain, with_reid = PoseTracker(), PoseTracker(reid="appearance")
    for frame in scene.frames:
        first = plain.update(frame.keypoints, frame.boxes, frame.scores)
        second = with_reid.update(frame.keypoints, frame.boxes, frame.scores)
        np.testing.assert_array_equal(first.ids, second.ids)
        np.testing.assert_array_equal(first.keypoints, second.keypoints)


def test_reid_options_and_the_command_line_flag():
    assert TrackerOptions(reid="models/osnet.ONNX").reid == "models/osnet.ONNX"
    with pytest.raises(ValueError, match="reid must be one of .* or the path of a .onnx file"):
        TrackerOptions(reid="colour")
    for bad in (dict(reid_threshold=0.0), dict(reid_margin=-0.1), dict(reid_weight=1.5), dict(reid_prototypes=0)):
        with pytest.raises(ValueError, match="TrackerOptions.reid_"):
            TrackerOptions(**bad)
    with pytest.raises(ValueError, match="missing.onnx: no such file"):
        PoseTracker(reid="missing.onnx")
    from cli.options import add_tracker_arguments, tracker_options  # noqa: PLC0415  (cli imports only here)

    parser = argparse.ArgumentParser()
    add_tracker_arguments(parser)
    for value in ("appearance", "net.onnx"):
        assert tracker_options(parser.parse_args(["--track-reid", value])) == {"reid": value}
    assert tracker_options(parser.parse_args(["--tracker-option", "reid_margin=0.2"])) == {"reid_margin": 0.2}


def _random_reid_network(path, embedding: int = 16) -> None:
    """A tiny seeded ReID-shaped ONNX network: (B, 3, 64, 32) -> (B, embedding)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415  (optional extra)

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "conv"),
               numpy_helper.from_array(rng.normal(0, 0.3, (8, embedding)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["crops", "conv"], ["features"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["features"], ["relu"]),
             helper.make_node("GlobalAveragePool", ["relu"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("MatMul", ["flat", "fc"], ["embedding"])]
    graph = helper.make_graph(nodes, "reid", [helper.make_tensor_value_info("crops", TensorProto.FLOAT,
                                                                            ["batch", 3, 64, 32])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", embedding])],
                              initializer=weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_an_onnx_reid_network_behind_the_same_interface(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "reid.onnx"
    _random_reid_network(path)
    tracker = PoseTracker(reid=str(path))
    encoder = tracker._reid.encoder
    assert encoder.input_hw == (64, 32) and encoder.num_features == 16
    a, b = _pose(150), _pose(450)
    boxes = np.array([[110, 120, 190, 245], [410, 120, 490, 245]], np.float32)
    encoded = encoder.encode(_frame([(a, RED, BLUE), (b, GREEN, YELLOW)]), np.stack([a, b]), boxes, 0.3)
    assert encoded.seen.all()
    np.testing.assert_allclose(np.linalg.norm(encoded.features[:, 0], axis=1), 1.0, rtol=1e-5)
    before, after = _leave_and_return(tracker, frames_away=35)  # tracks on with its descriptors
    assert before >= 1 and after >= 1
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="broken.onnx: not a readable ONNX model"):
        PoseTracker(reid=str(tmp_path / "broken.onnx"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["leave_return", "hide"])
def test_dressed_people_who_leave_or_hide_get_their_ids_back(name):
    scene = make_dressed_scene(name, seed=0, num_frames=360)
    scores = {}
    for reid in ("off", "appearance"):
        ids = []
        metrics = evaluate_scene(scene, lambda: PoseTracker(reid=reid), reid, use_images=True, ids_per_frame=ids)
        scores[reid] = metrics, reidentified(scene, ids)
        for frame_ids in ids:  # a track is never in two places
            tracked = frame_ids[frame_ids >= 0]
            assert len(np.unique(tracked)) == len(tracked)
    (off, off_back), (on, on_back) = scores["off"], scores["appearance"]
    assert on_back and np.mean(on_back) >= 0.75 and not any(off_back)
    assert on.idf1 >= off.idf1 + 0.1 and on.num_switches < off.num_switches


def test_appearance_only_reranks_contested_pairs():
    from tracker.association import blend_appearance  # noqa: PLC0415  (one test of an internal step)

    similarity = np.array([[0.8, 0.7, 0.0], [0.75, 0.7, 0.0], [0.0, 0.0, 0.5]], np.float32)
    looks = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], np.float32)
    asked = []

    def appearance(rows, columns):
        asked.append((rows.tolist(), columns.tolist()))
        return looks[np.ix_(rows, columns)]

    blended = blend_appearance(similarity, appearance, 0.5, 0.3)
    assert asked == [([0, 1], [0, 1])]  # the third pair is uncontested: never asked
    assert blended[0, 1] > blended[0, 0] and blended[1, 0] > blended[1, 1]  # re-ranked by the clothes
    assert blended[0, 0] >= 0.3 and blended[2, 2] == 0.5 and blended[0, 2] == 0.0  # nothing made or broken


@pytest.mark.parametrize("name,gaps", [("leave_return", (2 * 30, 10 * 30 + 40)), ("hide", (1.5 * 30, 4 * 30 + 40))])
def test_dressed_scenes_hide_people_as_long_as_they_say(name, gaps):
    from evaluation.dressed_scenes import returns  # noqa: PLC0415  (with the scene tests below)

    found = [item.gap for item in returns(make_dressed_scene(name, 0, 450, render=False))]
    assert len(found) >= 3 and all(gaps[0] <= gap <= gaps[1] for gap in found), found


@pytest.mark.slow
@pytest.mark.parametrize("name,frames", [("alike", 450), ("dressed_crowd", 200)])
def test_look_alikes_and_crowds_are_no_worse_with_reid(name, frames):
    scene = make_dressed_scene(name, seed=1, num_frames=frames)
    off, on = (evaluate_scene(scene, lambda reid=reid: PoseTracker(reid=reid), reid, use_images=True)
               for reid in ("off", "appearance"))
    assert on.num_switches <= off.num_switches and on.idf1 >= off.idf1


def test_the_pipeline_hands_every_frame_to_reid():
    """`track`, `gui`, `posetrack run` and the Ray engine all track through `pipeline.Pipeline`."""
    from pipeline.pipeline import Pipeline  # noqa: PLC0415  (a test of the layer above)
    from tests.pipeline_fakes import FakeDetector, FakeEstimator, ListSource  # noqa: PLC0415  (as above)

    tracker = PoseTracker(reid="appearance")
    seen = []
    encode = tracker._reid.encode
    tracker._reid.encode = lambda frame, keypoints, boxes: seen.append(frame[0, 0, 0]) or encode(frame, keypoints,
                                                                                               boxes)
    results = list(Pipeline(ListSource(6), FakeDetector(), FakeEstimator(), tracker).run())
    assert len(results) == 6 and seen == list(range(6))  # each frame's own image (pixels encode the index)


def test_only_people_in_front_hide_a_galleries_parts():
    from tracker.reid import in_front_boxes  # noqa: PLC0415  (one test of an internal step)

    boxes = np.array([[100, 100, 200, 300], [150, 200, 250, 350]], np.float32)  # the second one's feet are lower
    keypoints = np.array([[[160, 250], [120, 150]], [[160, 250], [240, 340]]], np.float32)
    hidden = in_front_boxes(keypoints, boxes, np.array([0, 1]))
    assert hidden.tolist() == [[True, False], [False, False]]
