"""PoseTrack file reading (2017 annolist, 2018 COCO-style), validation and the prediction writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.types import TrackedPoses
from evaluation.posetrack import evaluate_paths
from core.posetrack_format import (
    COCO_KEYPOINT_NAMES,
    MISSING_SCORE,
    POSETRACK18_KEYPOINT_NAMES,
    PoseTrackFormatError,
    read_posetrack_file,
    write_posetrack18_predictions,
)
from tests.posetrack_synthetic import document, make_person, noisy_predictions, random_video, write_video

VIDEO = "000001_mpii_test"


def annolist(frames):
    """The same people as `document`, in the PoseTrack 2017 format."""
    entries = []
    for t, people in enumerate(frames):
        rects = []
        for person in people:
            points = [{"id": [j], "x": [float(person["joints"][j, 0])], "y": [float(person["joints"][j, 1])],
                       "score": [float(person["scores"][j])]}
                      for j in range(15) if person["present"][j]]
            x, y, w, h = person["head"]
            rects.append({"x1": [x], "y1": [y], "x2": [x + w], "y2": [y + h], "track_id": [person["track_id"]],
                          "annopoints": [{"point": points}]})
        entries.append({"image": [{"name": f"images/val/{VIDEO}/{t:06d}.jpg"}], "annorect": rects})
    return {"annolist": entries}


def test_2017_and_2018_give_the_same_numbers(tmp_path):
    rng = np.random.default_rng(5)
    gt = random_video(rng, num_frames=6, num_people=3)
    pred = noisy_predictions(rng, gt, noise_heads=0.15)
    for fmt, build in (("2018", document), ("2017", None)):
        gt_doc = document(VIDEO, gt) if build else annolist(gt)
        pred_doc = document(VIDEO, pred) if build else annolist(pred)
        write_video(tmp_path / fmt / "gt", VIDEO, gt_doc)
        write_video(tmp_path / fmt / "pred", VIDEO, pred_doc)
    new = evaluate_paths(tmp_path / "2018" / "gt", tmp_path / "2018" / "pred")
    old = evaluate_paths(tmp_path / "2017" / "gt", tmp_path / "2017" / "pred")
    assert read_posetrack_file(tmp_path / "2017" / "gt" / f"{VIDEO}.json", ground_truth=True)[0].format == "2017"
    for name in ("ap", "mota", "motp", "precision", "recall"):
        np.testing.assert_allclose(getattr(old, name), getattr(new, name), atol=1e-12, err_msg=name)


def test_2018_joint_mapping_and_missing_rule(tmp_path):
    person = make_person(3, 300, 200)
    doc = document(VIDEO, [[person]])
    keypoints = np.array(doc["annotations"][0]["keypoints"], np.float64).reshape(17, 3)
    keypoints[POSETRACK18_KEYPOINT_NAMES.index("nose")] = [0, 0, 0]  # missing
    keypoints[POSETRACK18_KEYPOINT_NAMES.index("head_top")] = [50, 60, 0]  # v = 0 but coordinates: present
    doc["annotations"][0]["keypoints"] = keypoints.ravel().tolist()
    path = write_video(tmp_path, VIDEO, doc)
    frame = read_posetrack_file(path, ground_truth=True)[0].frames[0]
    assert frame.present[0].tolist() == [True] * 13 + [False, True]  # poseval ids: 13 nose, 14 head_top
    np.testing.assert_allclose(frame.keypoints[0, 14], [50, 60])
    # poseval id 0 is right_ankle, the last of the PoseTrack18 names
    np.testing.assert_allclose(frame.keypoints[0, 0], keypoints[16, :2])
    assert frame.track_ids.tolist() == [3]
    np.testing.assert_allclose(frame.head_boxes[0], [280, 180, 320, 220])


def test_missing_scores_fall_back_to_poseval_minimum(tmp_path):
    path = write_video(tmp_path, VIDEO, document(VIDEO, [[make_person(0, 300, 200)]], with_scores=False))
    frame = read_posetrack_file(path, ground_truth=False)[0].frames[0]
    assert np.all(frame.scores[0] == MISSING_SCORE)


def _broken(tmp_path, mutate, ground_truth=False):
    doc = document(VIDEO, [[make_person(0, 300, 200)]])
    mutate(doc)
    path = write_video(tmp_path, VIDEO, doc)
    with pytest.raises(PoseTrackFormatError) as error:
        read_posetrack_file(path, ground_truth=ground_truth)
    assert str(path) in str(error.value)
    return str(error.value)


@pytest.mark.parametrize(
    ("mutate", "field", "ground_truth"),
    [
        (lambda d: d["annotations"][0].pop("track_id"), "annotations[0].track_id", False),
        (lambda d: d.pop("categories"), "categories", False),
        (lambda d: d["annotations"][0].update(keypoints=[1, 2, 3]), "annotations[0].keypoints", False),
        (lambda d: d["annotations"][0].update(scores=[0.5] * 5), "annotations[0].scores", False),
        (lambda d: d["categories"][0]["keypoints"].remove("nose"), "categories[0].keypoints", False),
        (lambda d: d["images"][0].pop("file_name"), "images[0].file_name", False),
        (lambda d: d["annotations"][0].update(track_id="seven"), "annotations[0].track_id", False),
    ],
)
def test_invalid_files_name_file_and_field(tmp_path, mutate, field, ground_truth):
    assert field in _broken(tmp_path, mutate, ground_truth)


def test_invalid_json_and_2017_joint_id(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PoseTrackFormatError, match="bad.json"):
        read_posetrack_file(bad, ground_truth=True)
    doc = annolist([[make_person(0, 300, 200)]])
    doc["annolist"][0]["annorect"][0]["annopoints"][0]["point"][0]["id"] = [15]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PoseTrackFormatError, match=r"annolist\[0\]\.annorect\[0\]\.annopoints\[0\]\.point\[0\]\.id"):
        read_posetrack_file(path, ground_truth=True)


def test_duplicate_track_ids_rejected_by_writer(tmp_path):
    keypoints = np.zeros((2, 17, 2), np.float32)
    with pytest.raises(ValueError, match="track ids not unique"):
        write_posetrack18_predictions(tmp_path / "p.json", [({"file_name": "a/b/0.jpg", "id": 1},
                                                             (keypoints, np.ones((2, 17)), np.array([4, 4])))])


def test_writer_round_trip_scores_perfectly(tmp_path):
    gt_frames = [[make_person(0, 200, 150), make_person(1, 800, 150)] for _ in range(3)]
    gt_doc = document(VIDEO, gt_frames)
    write_video(tmp_path / "gt", VIDEO, gt_doc)
    frames = []
    for image, people in zip(gt_doc["images"], gt_frames):
        annotations = [a for a in gt_doc["annotations"] if a["image_id"] == image["id"]]
        keypoints = np.array([np.array(a["keypoints"]).reshape(17, 3)[:, :2] for a in annotations], np.float32)
        scores = np.full(keypoints.shape[:2], 0.8, np.float32)
        boxes = np.array([[0, 0, 10, 10]] * len(people), np.float32)
        poses = TrackedPoses(keypoints, scores, boxes, np.ones(len(people), np.float32),
                             np.array([p["track_id"] for p in people]), np.arange(len(people)))
        frames.append((image, poses))
    out = write_posetrack18_predictions(tmp_path / "pred" / f"{VIDEO}.json", frames)
    assert not list(out.parent.glob("*.tmp"))
    metrics = evaluate_paths(tmp_path / "gt", tmp_path / "pred")
    np.testing.assert_allclose(metrics.ap, 100.0)
    np.testing.assert_allclose(metrics.mota, 100.0)
    written = json.loads(out.read_text())
    ears = [POSETRACK18_KEYPOINT_NAMES.index("left_ear"), POSETRACK18_KEYPOINT_NAMES.index("right_ear")]
    assert all(np.array(a["keypoints"]).reshape(17, 3)[ears].sum() == 0 for a in written["annotations"])
    assert written["annotations"][0]["bbox"] == [0.0, 0.0, 10.0, 10.0]


@pytest.mark.parametrize("as_tuple", [False, True])
def test_writer_keeps_frames_without_people(tmp_path, as_tuple):
    # A frame where nobody was detected still belongs in the file (poseval aligns frames by position).
    empty = TrackedPoses.empty(17)
    poses = (empty.keypoints, empty.scores, empty.track_ids, empty.boxes) if as_tuple else empty
    person = (np.full((1, 17, 2), 50, np.float32), np.full((1, 17), 0.9, np.float32), np.array([3]))
    path = write_posetrack18_predictions(
        tmp_path / "p.json",
        [({"file_name": f"x/{VIDEO}/000000.jpg", "id": 0}, poses), ({"file_name": f"x/{VIDEO}/000001.jpg", "id": 1}, person)],
        keypoint_layout="coco")
    written = json.loads(path.read_text())
    assert [image["id"] for image in written["images"]] == [0, 1]
    assert [a["image_id"] for a in written["annotations"]] == [1]


def test_writer_coco_layout_and_threshold(tmp_path):
    keypoints = np.arange(17 * 2, dtype=np.float32).reshape(1, 17, 2) + 5
    scores = np.linspace(0.1, 0.9, 17, dtype=np.float32).reshape(1, 17)
    path = write_posetrack18_predictions(tmp_path / "p.json", [({"file_name": f"x/{VIDEO}/0.jpg", "id": 7},
                                                                (keypoints, scores, np.array([2])))],
                                         keypoint_layout="coco", score_threshold=0.5)
    annotation = json.loads(path.read_text())["annotations"][0]
    triples = np.array(annotation["keypoints"]).reshape(17, 3)
    for k, name in enumerate(POSETRACK18_KEYPOINT_NAMES):
        source = COCO_KEYPOINT_NAMES.index(name) if name in COCO_KEYPOINT_NAMES else None
        expected_present = source is not None and "ear" not in name and scores[0, source] >= 0.5
        assert (triples[k].sum() != 0) == expected_present, name
        if expected_present:
            np.testing.assert_allclose(triples[k, :2], keypoints[0, source])
    assert annotation["track_id"] == 2 and annotation["image_id"] == 7
    frame = read_posetrack_file(path, ground_truth=False)[0].frames[0]
    assert not frame.present[0, 12] and not frame.present[0, 14]  # head_bottom, head_top: no COCO counterpart


def test_multi_video_file_reads_every_video(data_dir):
    videos = read_posetrack_file(data_dir / "posetrack18_mini/annotations/test_posetrack18_val.json", ground_truth=True)
    assert [v.name for v in videos] == ["012834_mpii_test", "009473_mpii_test", "003418_mpii_test"]
    assert [v.frames[0].num_people for v in videos] == [11, 2, 1]
    assert [len(v.frames[0].ignore_regions) for v in videos] == [4, 2, 9]


def test_2017_prediction_track_ids_must_be_unique_per_frame(tmp_path):
    # eval_helpers.load_data_dir raises 'Non-unique tracklet IDs' for any prediction frame whose
    # annorects repeat a track_id, whatever the file format (the GT is not checked).
    people = [make_person(4, 300, 200), make_person(4, 700, 200)]
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(annolist([people])))
    with pytest.raises(PoseTrackFormatError, match=r"pred\.json.*annolist\[0\].*not unique"):
        read_posetrack_file(path, ground_truth=False)
    assert read_posetrack_file(path, ground_truth=True)[0].frames[0].num_people == 2


def test_2018_images_grouped_by_sequence_number(tmp_path):
    # convert.py (Video.from_new) groups images by basename(dirname(file_name)).split("_")[0],
    # in order of first appearance; the evaluator's "first video" is the first such group.
    doc = document(VIDEO, [[make_person(0, 300, 200)]] * 3)
    folders = ["000002_mpii_test", "000001_mpii_test", "000002_bonn_test"]
    for image, folder in zip(doc["images"], folders):
        image["file_name"] = f"images/val/{folder}/{image['id']}.jpg"
    path = write_video(tmp_path, VIDEO, doc)
    videos = read_posetrack_file(path, ground_truth=True)
    assert [v.name for v in videos] == ["000002_mpii_test", "000001_mpii_test"]
    assert [len(v.frames) for v in videos] == [2, 1]
