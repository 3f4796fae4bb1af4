"""`coco eval --results`: a results file is checked before pycocotools sees it; errors name the entry and field."""

from __future__ import annotations

import json
import logging

import pytest

import main
from evaluation import coco

ANNOTATION = "coco_mini/test_coco.json"


def result(**fields):
    entry = {"image_id": 785, "category_id": 1, "keypoints": [10.0, 20.0, 1.0] * 17, "score": 0.9}
    entry.update(fields)
    return entry


@pytest.mark.parametrize(
    "entries, message",
    [
        ([result(), result(keypoints=[10.0, "x", 1.0] + [0.0] * 48)], r"result 1 \(image_id 785\): keypoints\[1\] is 'x'"),
        ([result(keypoints=[None] * 51)], r"keypoints\[0\] is None, not a finite number"),
        ([result(keypoints=[float("nan")] + [0.0] * 50)], r"keypoints\[0\] is nan"),
        ([result(score="high")], r"score is 'high'"),
        ([result(image_id="785")], r"image_id must be an integer"),
        ([result(), result(category_id=2)], r"result 1 \(image_id 785\): category_id is 2; .* person category \(1\)"),
    ],
)
def test_bad_entries_are_named_before_scoring(data_dir, tmp_path, entries, message):
    annotation = coco.load_annotation(data_dir / ANNOTATION)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=message) as info:
        coco.load_results(path, annotation)
    assert "results.json" in str(info.value)


def test_the_cli_reports_a_non_numeric_keypoint_instead_of_crashing(data_dir, tmp_path, caplog):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([result(keypoints=["a"] * 51)]))
    with caplog.at_level(logging.ERROR):
        status = main.main(["coco", "eval", "--results", str(path), "--ann", str(data_dir / ANNOTATION)])
    assert status == 2
    assert "results.json: result 0 (image_id 785): keypoints[0] is 'a'" in caplog.text
