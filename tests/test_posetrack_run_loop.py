"""`posetrack run` through the pipeline: 2017 annolist GT, a detection file by image id, no leftovers on failure."""

from __future__ import annotations

import json
import shutil

import main
from detector import FileDetector
from evaluation.posetrack_run import predict_video
from pose.estimator import PoseEstimator
from tracker import PoseTracker


def model_args(hrnet_reference_dir):
    return ["--pose-config", str(hrnet_reference_dir / "dev_tiny.yaml"),
            "--pose-weights", str(hrnet_reference_dir / "dev_tiny_state_dict.pt"),
            "--device", "cpu", "--no-flip", "--no-progress"]


def test_a_failed_video_leaves_no_partial_file(data_dir, hrnet_reference_dir, tmp_path):
    root = tmp_path / "posetrack"
    shutil.copytree(data_dir / "posetrack18_mini" / "annotations" / "val", root / "annotations" / "val")
    shutil.copytree(data_dir / "posetrack18_mini" / "images", root / "images")
    (root / "images" / "val" / "009473_mpii_test" / "000000.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "pred"
    status = main.main(["posetrack", "run", "--data", str(root), "--out", str(out), "--use-gt-boxes",
                        *model_args(hrnet_reference_dir)])
    assert status == 1
    assert sorted(p.name for p in out.iterdir()) == ["003418_mpii_test.json", "012834_mpii_test.json"]


def test_2017_annotations_and_a_detection_file_by_image_id(data_dir, hrnet_reference_dir, tmp_path):
    source = data_dir / "posetrack18_mini"
    gt_2018 = json.loads((source / "annotations" / "val" / "012834_mpii_test.json").read_text())
    annolist = {"annolist": [{"image": [{"name": image["file_name"]}], "annorect": []} for image in gt_2018["images"]]}
    annotation = tmp_path / "012834_mpii_test.json"
    annotation.write_text(json.dumps(annolist))
    # The 2017 image ids are positions: the detection file's entries for frame 0 are given image id 0.
    detections = [dict(entry, image_id=0) for entry in
                  json.loads((source / "annotations" / "test_posetrack18_human_detections.json").read_text())
                  if entry["image_id"] == gt_2018["images"][0]["id"] and entry["score"] >= 0.5]
    det_path = tmp_path / "detections.json"
    det_path.write_text(json.dumps(detections))
    estimator = PoseEstimator.from_config(hrnet_reference_dir / "dev_tiny.yaml",
                                          weights=hrnet_reference_dir / "dev_tiny_state_dict.pt", device="cpu",
                                          flip_test=False)
    output = tmp_path / "pred" / "012834_mpii_test.json"
    frames = predict_video(annotation, source, FileDetector(det_path), estimator, PoseTracker(min_hits=1),
                           None, output, progress=False)
    assert frames == 1
    (entry,) = json.loads(output.read_text())["annolist"]
    assert entry["image"][0]["name"] == gt_2018["images"][0]["file_name"]
    assert len(entry["annorect"]) == len(detections)  # every detected person, tracked from the first frame
