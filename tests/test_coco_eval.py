"""COCO keypoint evaluation: official test protocol on coco_mini with the seeded dev-tiny HRNet."""

from __future__ import annotations

import json

import numpy as np
import pytest

import main
from detector import FileDetector, GroundTruthDetector
from evaluation import coco
from pose.nms import rescore


@pytest.fixture(scope="module")
def coco_dir(data_dir):
    return data_dir / "coco_mini"


@pytest.fixture(scope="module")
def annotation(coco_dir):
    return coco.load_annotation(coco_dir / "test_coco.json")


@pytest.fixture(scope="module")
def estimator(hrnet_reference_dir):
    from pose.estimator import PoseEstimator

    return PoseEstimator.from_config(
        hrnet_reference_dir / "dev_tiny.yaml",
        weights=hrnet_reference_dir / "dev_tiny_state_dict.pt",
        device="cpu",
        flip_test=True,
    )


def ground_truth_as_results(annotation):
    return [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in annotation["annotations"]
        if a["num_keypoints"] > 0
    ]


def test_ground_truth_scored_as_results_gives_perfect_ap(annotation):
    scores = coco.score_results(ground_truth_as_results(annotation), annotation)
    assert list(scores.stats) == list(coco.STATS_NAMES)
    for name in ("AP", "Ap .5", "AP .75", "AR", "AR .5", "AR .75"):
        assert scores.stats[name] == pytest.approx(1.0), name
    assert "Average Precision" in scores.summary


def test_worse_predictions_score_lower(annotation):
    shifted = ground_truth_as_results(annotation)
    for result in shifted:
        result["keypoints"] = [v + 15 if i % 3 != 2 else v for i, v in enumerate(result["keypoints"])]
    assert coco.score_results(shifted, annotation).stats["AP"] < 0.9


def test_score_results_does_not_mutate_input(annotation):
    results = ground_truth_as_results(annotation)
    coco.score_results(results, annotation)
    assert set(results[0]) == {"image_id", "category_id", "keypoints", "score"}


# The reference arrays were made with OpenCV 5.0.0 (pinned in pyproject.toml): OpenCV 5.1's warpAffine
# resamples differently and moves decoded keypoints by pixels, beyond this tolerance.
def test_pipeline_matches_the_official_end_to_end_reference(estimator, annotation, coco_dir, hrnet_reference_dir, tmp_path):
    """The 5 boxes of image 196141 through the official path (reference from the official code)."""
    reference = np.load(hrnet_reference_dir / "dev_tiny_e2e_coco196141.npz")
    det_path = tmp_path / "dets.json"
    det_path.write_text(json.dumps([
        {"image_id": 196141, "category_id": 1, "bbox": box.tolist(), "score": 1.0} for box in reference["box_xywh"]
    ]))
    only_196141 = dict(annotation, images=[i for i in annotation["images"] if i["id"] == 196141])
    results = coco.predict_coco(
        estimator, only_196141, coco_dir, FileDetector(det_path, sort_by_score=False), progress=False
    )
    expected_keypoints = np.concatenate([reference["preds"], reference["maxvals"]], axis=-1)
    expected_scores = rescore(reference["maxvals"][..., 0], np.ones(5), 0.2)
    assert 1 <= len(results) <= 5
    for result in results:
        # Match each kept result to its reference detection by center.
        index = int(np.argmin(np.abs(reference["center"] - np.array(result["center"])).sum(axis=1)))
        np.testing.assert_allclose(result["center"], reference["center"][index], rtol=0, atol=0)
        np.testing.assert_allclose(result["scale"], reference["scale"][index], rtol=0, atol=0)
        points = np.array(result["keypoints"]).reshape(17, 3)
        np.testing.assert_allclose(points[:, :2], expected_keypoints[index, :, :2], atol=1e-3)
        np.testing.assert_allclose(points[:, 2], expected_keypoints[index, :, 2], atol=1e-4)
        assert result["score"] == pytest.approx(expected_scores[index], abs=1e-5)
        assert result["image_id"] == 196141 and result["category_id"] == 1
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_oks_nms_removes_duplicate_detections(estimator, annotation, coco_dir, tmp_path):
    """The same box twice: identical keypoints (OKS 1 > 0.9), only the better-scored copy is written."""
    box = [247.76, 74.23, 169.67, 300.78]
    det_path = tmp_path / "dets.json"
    det_path.write_text(json.dumps([
        {"image_id": 196141, "category_id": 1, "bbox": box, "score": 0.6},
        {"image_id": 196141, "category_id": 1, "bbox": box, "score": 0.9},
        {"image_id": 196141, "category_id": 1, "bbox": box, "score": 0.05},  # below IMAGE_THRE 0.1 here
    ]))
    settings = coco.CocoTestSettings(box_score_threshold=0.1)
    detections = FileDetector(det_path, score_threshold=settings.box_score_threshold, sort_by_score=False)
    results = coco.predict_coco(estimator, annotation, coco_dir, detections, settings, progress=False)
    assert len(results) == 1
    points = np.array(results[0]["keypoints"]).reshape(17, 3)
    assert results[0]["score"] == pytest.approx(rescore(points[None, :, 2], [0.9], 0.2)[0])


def test_ground_truth_boxes_end_to_end_via_cli(coco_dir, hrnet_reference_dir, tmp_path, capsys, annotation):
    out = tmp_path / "results" / "keypoints.json"
    status = main.main([
        "coco", "eval", "--ann", str(coco_dir / "test_coco.json"), "--images", str(coco_dir), "--gt-boxes",
        "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
        "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
        "--device", "cpu", "--out", str(out), "--no-progress",
    ])
    assert status == 0
    printed = capsys.readouterr().out
    assert "| Arch | AP | Ap .5 | AP .75 | AP (M) | AP (L) | AR | AR .5 | AR .75 | AR (M) | AR (L) |" in printed
    assert "| dev_tiny |" in printed
    results = json.loads(out.read_text())
    gt = GroundTruthDetector(coco_dir / "test_coco.json")
    # No two GT people have OKS > 0.9 here, so every cleaned GT box gives one result.
    assert len(results) == sum(len(gt.boxes_xywh(i)[0]) for i in gt.image_ids) == 12
    for result in results:
        assert set(result) == {"image_id", "category_id", "keypoints", "score", "center", "scale"}
        assert len(result["keypoints"]) == 51 and result["category_id"] == 1
        points = np.array(result["keypoints"]).reshape(17, 3)
        assert result["score"] == pytest.approx(rescore(points[None, :, 2], [1.0], 0.2)[0], abs=1e-6)
    coco.check_results(results, annotation)  # a valid results file for the same annotation


def test_threshold_flags_override_the_config(coco_dir, hrnet_reference_dir, tmp_path):
    """--oks-nms-threshold 0 keeps one pose per image (any two overlap by OKS > 0);
    --keypoint-score-threshold sets which keypoint scores the rescoring averages."""
    out = tmp_path / "keypoints.json"
    status = main.main([
        "coco", "eval", "--ann", str(coco_dir / "test_coco.json"), "--images", str(coco_dir), "--gt-boxes",
        "--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
        "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
        "--device", "cpu", "--out", str(out), "--no-progress",
        "--oks-nms-threshold", "0", "--keypoint-score-threshold", "0.05",
    ])
    assert status == 0
    results = json.loads(out.read_text())
    gt = GroundTruthDetector(coco_dir / "test_coco.json")
    images_with_people = [i for i in gt.image_ids if len(gt.boxes_xywh(i)[0])]
    assert sorted(r["image_id"] for r in results) == sorted(images_with_people)
    for result in results:
        points = np.array(result["keypoints"]).reshape(17, 3)
        assert result["score"] == pytest.approx(rescore(points[None, :, 2], [1.0], 0.05)[0], abs=1e-6)


def test_results_file_scoring_via_cli(coco_dir, annotation, tmp_path, capsys):
    path = tmp_path / "gt_results.json"
    path.write_text(json.dumps(ground_truth_as_results(annotation)))
    assert main.main(["coco", "eval", "--results", str(path), "--ann", str(coco_dir / "test_coco.json")]) == 0
    printed = capsys.readouterr().out
    assert "| gt_results | 1.000 | 1.000 | 1.000 |" in printed


@pytest.mark.parametrize(
    "content, message",
    [
        ("{broken", "not valid JSON"),
        ('{"a": 1}', "must hold a list"),
        ("[]", "holds no results"),
        ('[{"image_id": 785, "category_id": 1, "score": 1.0}]', "needs image_id, category_id, keypoints and score"),
        ('[{"image_id": 785, "category_id": 1, "keypoints": [1, 2, 3], "score": 1.0}]', "list of 51 numbers"),
        (json.dumps([{"image_id": 42, "category_id": 1, "keypoints": [0] * 51, "score": 1.0}]), r"not in the annotation file, e.g. \[42\]"),
    ],
)
def test_bad_results_files_are_named(annotation, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        coco.load_results(path, annotation)
    assert "bad.json" in str(info.value)


def test_cli_reports_input_errors(coco_dir, tmp_path, caplog):
    ann = str(coco_dir / "test_coco.json")
    assert main.main(["coco", "eval", "--results", str(tmp_path / "none.json"), "--ann", ann]) == 2
    assert "none.json does not exist" in caplog.text
    assert main.main(["coco", "eval", "--results", str(tmp_path / "x.json"), "--ann", str(tmp_path / "no_ann.json")]) == 2
    assert "no_ann.json does not exist" in caplog.text
    assert main.main(["coco", "eval", "--ann", ann, "--gt-boxes"]) == 2
    assert "--images DIR is needed" in caplog.text
    assert main.main(["coco", "eval", "--ann", ann, "--images", str(coco_dir)]) == 2
    assert "--det-file DETECTIONS.json or --gt-boxes" in caplog.text
    not_coco = tmp_path / "not_coco.json"
    not_coco.write_text("[1, 2]")
    assert main.main(["coco", "eval", "--results", str(not_coco), "--ann", str(not_coco)]) == 2
    assert "not a COCO annotation file" in caplog.text
    # An unusable --out is refused before the model runs, not after.
    (tmp_path / "taken").write_text("a file where the folder should be")
    assert main.main(["coco", "eval", "--ann", ann, "--images", str(coco_dir), "--gt-boxes",
                      "--out", str(tmp_path / "taken" / "results.json")]) == 2
    assert "taken/results.json: cannot create its folder" in caplog.text
    assert main.main(["coco", "eval", "--ann", ann, "--images", str(coco_dir), "--gt-boxes", "--out", str(tmp_path)]) == 2
    assert "is a folder" in caplog.text


def test_missing_image_is_named(estimator, annotation, tmp_path):
    with pytest.raises(FileNotFoundError, match="000000000785.jpg"):
        coco.predict_coco(estimator, annotation, tmp_path, ground_truth_boxes_for(annotation, tmp_path), progress=False)


def ground_truth_boxes_for(annotation, folder):
    path = folder / "ann.json"
    path.write_text(json.dumps(annotation))
    return GroundTruthDetector(path)


def test_official_table_layout():
    table = coco.format_official_table(dict(zip(coco.STATS_NAMES, np.linspace(0.1, 1.0, 10))), "pose_hrnet")
    lines = table.splitlines()
    assert lines[1] == "|---" * 11 + "|"
    assert lines[2] == "| pose_hrnet | 0.100 | 0.200 | 0.300 | 0.400 | 0.500 | 0.600 | 0.700 | 0.800 | 0.900 | 1.000 |"
