"""The ONNX Runtime backend: export agrees with eager PyTorch, the cache is reused, int8 stays close, `main.py export`.

Agreement is measured on the trained test model (tests/data/trained), whose
output is not chaotic, on the annotated people of the COCO test images, with
the helpers of benchmarks/onnx_backends.py (which reports the same numbers).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import main
import pose
from benchmarks.onnx_backends import coco_people, keypoints_with
from core.io import read_image
from pose.estimator import PoseEstimator
from pose.runtime import TorchRuntime
from pose.transforms import boxes_to_centers_scales, network_input
from tests.sample_data import DATA

pytest.importorskip("onnxruntime")  # the optional "onnx" extra
pytest.importorskip("onnxscript")
from pose.backends import onnx as onnx_module  # noqa: E402

TRAINED_CONFIG = DATA / "trained" / "synthetic_w16_64x48.yaml"
TRAINED_WEIGHTS = DATA / "trained" / "synthetic_w16_64x48.pth"
COCO = DATA / "coco_mini"
INPUT_HW = (64, 48)


@pytest.fixture(scope="module")
def trained_model():
    model = pose.build_model(TRAINED_CONFIG)
    pose.load_weights(model, TRAINED_WEIGHTS)
    return model.eval()


@pytest.fixture(scope="module")
def people():
    """(image, (N, 4) xywh boxes) of the COCO test images' people with keypoints."""
    return coco_people()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def fp32_runtime(trained_model, cache_dir):
    return onnx_module.onnx_runtime(trained_model, input_size=INPUT_HW, max_batch=8, weights_id="trained",
                                    cache_dir=cache_dir, precision="fp32", calibration=None)


def person_crops(people) -> np.ndarray:
    return np.concatenate([network_input(image, *boxes_to_centers_scales(boxes, 48 / 64, "xywh"), (48, 64))
                           for image, boxes in people])


@pytest.mark.slow
def test_fp32_export_gives_the_eager_heatmaps_and_keypoints(trained_model, fp32_runtime, people):
    crops = person_crops(people)
    eager = TorchRuntime(trained_model)(crops)
    exported = fp32_runtime(crops)  # 12 crops: split into calls of at most max_batch=8
    assert exported.shape == eager.shape == (len(crops), 17, 16, 12)
    np.testing.assert_allclose(exported, eager, atol=1e-4, rtol=0)
    eager_keypoints = keypoints_with(TorchRuntime(trained_model), people)
    displacement = np.linalg.norm(keypoints_with(fp32_runtime, people) - eager_keypoints, axis=-1)
    assert displacement.max() < 0.01  # image px
    assert fp32_runtime.device == "cpu" and "fp32" in fp32_runtime.name


@pytest.mark.slow
def test_second_start_loads_the_cached_file_and_other_weights_get_their_own(trained_model, fp32_runtime, cache_dir):
    assert fp32_runtime.built_s > 0
    stamp = fp32_runtime.path.stat().st_mtime_ns
    again = onnx_module.onnx_runtime(trained_model, input_size=INPUT_HW, max_batch=4, weights_id="trained",
                                     cache_dir=cache_dir, precision="fp32", calibration=None)
    assert again.path == fp32_runtime.path and again.built_s == 0.0
    assert again.path.stat().st_mtime_ns == stamp  # not exported again
    other = onnx_module.model_path(cache_dir, "other-weights", INPUT_HW, "fp32")
    assert other != fp32_runtime.path and not other.exists()
    assert not list(cache_dir.glob("*.part"))


@pytest.mark.slow
def test_int8_calibrated_on_two_images_stays_near_fp32(trained_model, fp32_runtime, cache_dir, people):
    images = sorted(COCO.glob("*.jpg"))[:2]
    int8 = onnx_module.onnx_runtime(trained_model, input_size=INPUT_HW, max_batch=8, weights_id="trained",
                                    cache_dir=cache_dir, precision="int8", calibration=images)
    assert int8.path != fp32_runtime.path and int8.path.stat().st_size < fp32_runtime.path.stat().st_size / 2
    displacement = np.linalg.norm(keypoints_with(int8, people) - keypoints_with(fp32_runtime, people), axis=-1)
    # Stated tolerance for the 64x48 trained model (one heatmap cell is ~4 input px, several image px):
    # most keypoints stay put, a few low-confidence ones jump to another peak.
    assert np.median(displacement) < 2.0
    assert (displacement <= 2.0).mean() >= 0.6


def test_int8_without_calibration_files_and_dynamic_int8_are_refused(trained_model, tmp_path):
    with pytest.raises(ValueError, match="calibration"):
        onnx_module.onnx_runtime(trained_model, input_size=INPUT_HW, max_batch=8, weights_id="x",
                                 cache_dir=tmp_path, precision="int8", calibration=[])
    with pytest.raises(FileNotFoundError, match="no_such.jpg"):
        onnx_module.onnx_runtime(trained_model, input_size=INPUT_HW, max_batch=8, weights_id="x",
                                 cache_dir=tmp_path, precision="int8", calibration=[tmp_path / "no_such.jpg"])
    with pytest.raises(ValueError, match="dynamic int8"):
        onnx_module.onnx_runtime(trained_model, input_size=INPUT_HW, max_batch=8, weights_id="x",
                                 cache_dir=tmp_path, precision="int8-dynamic", calibration=None)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        onnx_module.onnx_runtime(trained_model, input_size=(48, 64), max_batch=8, weights_id="x",
                                 cache_dir=tmp_path, precision="fp32", calibration=None)
    assert not list(tmp_path.iterdir())


def test_int8_without_named_files_calibrates_on_the_reference_people():
    crops = onnx_module.default_calibration(INPUT_HW)
    assert crops.shape == (2 * 12, 3, 64, 48)  # the 12 people of coco_mini with labeled keypoints, and mirrored


@pytest.mark.slow
def test_estimator_with_the_onnxruntime_backend_gives_the_eager_keypoints(tmp_path, people):
    images, boxes = [image for image, _ in people], [b for _, b in people]
    eager = PoseEstimator.from_config(TRAINED_CONFIG, weights=TRAINED_WEIGHTS, batch_size=4)
    onnx = PoseEstimator.from_config(TRAINED_CONFIG, weights=TRAINED_WEIGHTS, batch_size=4,
                                     backend="onnxruntime", cache_dir=tmp_path)
    assert "onnxruntime" in onnx.runtime.name and onnx.runtime.max_batch == 8  # 4 crops + their mirror images
    for (expected, expected_scores), (found, scores) in zip(eager.estimate_many(images, boxes, "xywh"),
                                                            onnx.estimate_many(images, boxes, "xywh")):
        np.testing.assert_allclose(found, expected, atol=1e-3)
        np.testing.assert_allclose(scores, expected_scores, atol=1e-4)


def test_calibration_crops_come_from_images_and_video_frames():
    from pose.backends.calibration import calibration_crops
    from tests.sample_data import SAMPLE_VIDEO

    crops = calibration_crops([COCO / "000000000785.jpg", SAMPLE_VIDEO], INPUT_HW, frames_per_video=3)
    assert crops.shape == (2 * (1 + 3), 3, 64, 48) and crops.dtype == np.float32
    np.testing.assert_array_equal(crops[4:], crops[:4, :, :, ::-1])  # the mirror images follow
    image = read_image(COCO / "000000000785.jpg")
    box = np.array([[0.0, 0.0, image.shape[1], image.shape[0]]])
    np.testing.assert_array_equal(crops[0], network_input(image, *boxes_to_centers_scales(box, 0.75), (48, 64))[0])


def test_physical_cores_is_at_least_one():
    assert 1 <= onnx_module.physical_cores() <= (len(__import__("os").sched_getaffinity(0)))


# main.py export ------------------------------------------------------------------------------

MODEL_ARGS = ["--pose-config", str(TRAINED_CONFIG), "--pose-weights", str(TRAINED_WEIGHTS)]


@pytest.mark.slow
def test_export_command_writes_a_model_that_matches_eager(tmp_path, trained_model, people):
    out = tmp_path / "models" / "hrnet.onnx"
    assert main.main(["export", "--format", "onnx", "--out", str(out), *MODEL_ARGS]) == 0
    crops = person_crops(people)
    exported = onnx_module.OnnxRuntimeSession(out)(crops)
    np.testing.assert_allclose(exported, TorchRuntime(trained_model)(crops), atol=1e-4, rtol=0)
    assert sorted(path.name for path in out.parent.iterdir()) == ["hrnet.onnx"]


@pytest.mark.slow
def test_export_command_int8_with_detector_file_boxes(tmp_path):
    out = tmp_path / "int8.onnx"
    status = main.main(["export", "--format", "onnx", "--int8", "--out", str(out), *MODEL_ARGS,
                        "--calibration", str(COCO / "000000000785.jpg"), str(COCO / "000000196141.jpg"),
                        "--det-file", str(COCO / "test_coco_det_AP_H_56.json")])
    assert status == 0
    session = onnx_module.OnnxRuntimeSession(out)
    assert any(node.op_type == "QuantizeLinear" for node in __import__("onnx").load(str(out)).graph.node)
    assert session(np.zeros((3, 3, 64, 48), np.float32)).shape == (3, 17, 16, 12)


def test_export_command_names_a_missing_weights_file(tmp_path, caplog):
    out = tmp_path / "hrnet.onnx"
    missing = tmp_path / "no_such.pth"
    status = main.main(["export", "--format", "onnx", "--out", str(out), "--pose-config", str(TRAINED_CONFIG),
                        "--pose-weights", str(missing)])
    assert status == 2 and str(missing) in caplog.text and "does not exist" in caplog.text
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("problem", ["missing", "not an image"])
def test_export_command_names_a_bad_calibration_file(tmp_path, caplog, problem):
    bad = tmp_path / "frame.jpg"
    if problem == "not an image":
        bad.write_text("not a jpeg")
    out = tmp_path / "int8.onnx"
    status = main.main(["export", "--format", "onnx", "--int8", "--out", str(out), *MODEL_ARGS,
                        "--calibration", str(COCO / "000000000785.jpg"), str(bad), "--calibration-boxes", "whole"])
    assert status == 2 and str(bad) in caplog.text
    assert ("does not exist" if problem == "missing" else "could not be read") in caplog.text
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_export_command_int8_needs_calibration(tmp_path, caplog):
    status = main.main(["export", "--format", "onnx", "--int8", "--out", str(tmp_path / "x.onnx"), *MODEL_ARGS])
    assert status == 2 and "--calibration" in caplog.text


@pytest.mark.slow
def test_backend_benchmark_quick_run_reports_speed_and_agreement(tmp_path):
    out = tmp_path / "onnx.json"
    root = DATA.parent.parent
    script = root / "benchmarks" / "onnx_backends.py"
    completed = subprocess.run([sys.executable, str(script), "--quick", "--json", str(out)],
                               cwd=root, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(out.read_text())
    speed = {row["backend"]: row for row in report["speed"]["rows"]}
    assert {"torch", "ort-fp32", "ort-fp32-spin", "ort-int8"} <= set(speed)
    assert all(row["crops_per_s"] > 0 for row in speed.values() if "error" not in row)
    assert "conv_after_gflops" in speed["ort-fp32"] and "conv_after_gflops" in speed["ort-fp32-spin"]
    agreement = {row["backend"]: row for row in report["agreement"]}
    assert agreement["ort-fp32"]["mean_px"] < 0.01 and agreement["ort-fp32"]["within_2px"] == 1.0
    assert agreement["ort-int8"]["keypoints"] == 12 * 17  # the 12 people with keypoints, 17 each
