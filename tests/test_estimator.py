"""PoseEstimator end to end against the official top-down pipeline on a real COCO image."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from pose.estimator import PoseEstimator

# The reference arrays were made with OpenCV 5.0.0 (pinned in pyproject.toml): OpenCV 5.1's warpAffine
# resamples differently and moves decoded keypoints by pixels, beyond the 0.0-1e-3 px tolerances below.


@pytest.fixture(scope="module")
def e2e(hrnet_reference_dir):
    return np.load(hrnet_reference_dir / "dev_tiny_e2e_coco196141.npz")


@pytest.fixture(scope="module")
def estimator(hrnet_reference_dir):
    return PoseEstimator.from_config(
        hrnet_reference_dir / "dev_tiny.yaml", weights=hrnet_reference_dir / "dev_tiny_state_dict.pt", device="cpu"
    )


@pytest.fixture(scope="module")
def image(data_dir, e2e):
    path = data_dir / "coco_mini" / str(e2e["image"])
    return cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)


def xyxy(box_xywh):
    return np.concatenate([box_xywh[:, :2], box_xywh[:, :2] + box_xywh[:, 2:]], axis=1)


def assert_heatmaps_close(ours, ref):
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_crops_match_official(estimator, image, e2e):
    centers, scales = estimator.centers_scales(xyxy(e2e["box_xywh"]))
    np.testing.assert_allclose(centers, e2e["center"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(scales, e2e["scale"], rtol=1e-6)
    batch = estimator.preprocess(image, e2e["center"], e2e["scale"])
    np.testing.assert_allclose(batch, e2e["crops"], rtol=0, atol=1e-6)


@pytest.mark.slow  # 4-6 CPU-seconds each (official-size crops)
@pytest.mark.parametrize("flip_test", [False, True])
def test_heatmaps_match_official(estimator, e2e, flip_test, monkeypatch):
    monkeypatch.setattr(estimator, "flip_test", flip_test)
    heatmaps = estimator.infer_heatmaps(e2e["crops"])
    assert_heatmaps_close(heatmaps, e2e["heatmaps_flip_test" if flip_test else "heatmaps"])


@pytest.mark.slow  # 4-6 CPU-seconds each (official-size crops)
@pytest.mark.parametrize("flip_test, suffix", [(True, ""), (False, "_no_flip")])
def test_keypoints_match_official(estimator, image, e2e, flip_test, suffix, monkeypatch):
    monkeypatch.setattr(estimator, "flip_test", flip_test)
    keypoints, scores = estimator(image, xyxy(e2e["box_xywh"]))
    assert keypoints.shape == (5, 17, 2) and keypoints.dtype == np.float32
    assert scores.shape == (5, 17) and scores.dtype == np.float32
    np.testing.assert_allclose(keypoints, e2e["preds" + suffix], rtol=0, atol=1e-3)
    np.testing.assert_allclose(scores, e2e["maxvals" + suffix][..., 0], rtol=0, atol=1e-4 * np.abs(e2e["maxvals"]).max())
    # COCO json boxes as given ([x, y, w, h])
    keypoints_xywh, _ = estimator(image, e2e["box_xywh"], box_format="xywh")
    np.testing.assert_allclose(keypoints_xywh, e2e["preds" + suffix], rtol=0, atol=1e-3)


@pytest.mark.slow  # about 4 CPU-seconds
def test_estimate_many_batches_all_images(estimator, image, e2e, monkeypatch):
    boxes = xyxy(e2e["box_xywh"])
    calls = []
    runtime = estimator.runtime
    monkeypatch.setattr(estimator, "runtime", lambda batch: calls.append(len(batch)) or runtime(batch))
    small = image[: image.shape[0] // 2].copy()
    results = estimator.estimate_many([image, small, image], [boxes[:3], np.zeros((0, 4)), boxes[3:]])
    assert calls == [10]  # 5 crops + 5 mirrored crops in one network call
    assert [len(k) for k, _ in results] == [3, 0, 2]
    assert results[1][0].shape == (0, 17, 2) and results[1][1].shape == (0, 17)
    keypoints = np.concatenate([results[0][0], results[2][0]])
    np.testing.assert_allclose(keypoints, e2e["preds"], rtol=0, atol=1e-3)


def test_batch_size_chunks_the_network_calls(estimator, image, e2e, monkeypatch):
    calls = []
    runtime = estimator.runtime
    monkeypatch.setattr(estimator, "runtime", lambda batch: calls.append(len(batch)) or runtime(batch))
    monkeypatch.setattr(estimator, "batch_size", 2)
    keypoints, _ = estimator(image, xyxy(e2e["box_xywh"]))
    assert calls == [4, 4, 2]
    np.testing.assert_allclose(keypoints, e2e["preds"], rtol=0, atol=1e-3)


def test_no_boxes_gives_empty_arrays(estimator, image, monkeypatch):
    monkeypatch.setattr(estimator, "runtime", lambda batch: pytest.fail("network called without boxes"))
    keypoints, scores = estimator(image, np.zeros((0, 4), np.float32))
    assert keypoints.shape == (0, 17, 2) and keypoints.dtype == np.float32
    assert scores.shape == (0, 17) and scores.dtype == np.float32
    assert estimator.estimate_many([], []) == []


def test_metadata(estimator):
    assert estimator.num_keypoints == 17
    assert estimator.keypoint_names[0] == "nose" and len(estimator.keypoint_names) == 17
    assert (5, 6) in estimator.flip_pairs
    assert all(0 <= a < 17 and 0 <= b < 17 for a, b in estimator.skeleton)
    assert estimator.sigmas is not None and estimator.sigmas.shape == (17,)
    assert estimator.input_size == (128, 160)
    assert estimator.device == "cpu"


@pytest.mark.parametrize(
    "image_arg, boxes, message",
    [
        (np.zeros((10, 10), np.uint8), np.zeros((1, 4)), "uint8 BGR"),
        (np.zeros((10, 10, 3), np.float32), np.zeros((1, 4)), "uint8 BGR"),
        (np.zeros((10, 10, 3), np.uint8), np.zeros((1, 5)), r"\(N, 4\)"),
        (np.zeros((10, 10, 3), np.uint8), np.array([[0, 0, np.nan, 5]]), "NaN"),
    ],
)
def test_bad_inputs_are_rejected(estimator, image_arg, boxes, message):
    with pytest.raises(ValueError, match=message):
        estimator(image_arg, boxes)


def test_random_weights_warn_and_mpii_metadata(caplog):
    with caplog.at_level(logging.WARNING):
        mpii = PoseEstimator.from_config("mpii/w32_256x256", weights=None, flip_test=False)
    assert "random" in caplog.text
    assert mpii.num_keypoints == 16 and mpii.sigmas is None and mpii.input_size == (256, 256)
    assert mpii.keypoint_names[9] == "head_top"


def test_dark_decoding_changes_only_sub_pixel_positions(hrnet_reference_dir, image, e2e):
    dark = PoseEstimator.from_config(
        hrnet_reference_dir / "dev_tiny.yaml",
        weights=hrnet_reference_dir / "dev_tiny_state_dict.pt",
        decoding="dark",
    )
    keypoints, scores = dark(image, xyxy(e2e["box_xywh"]))
    np.testing.assert_allclose(scores, e2e["maxvals"][..., 0], rtol=0, atol=1e-5)
    # one heatmap pixel is scale*200/heatmap_w image px; DARK moves points by at most
    # that from the argmax, and the official quarter offset is a quarter of it
    pixel = (e2e["scale"][:, :1] * 200 / 32)[:, None, :]
    assert np.all(np.abs(keypoints - e2e["preds"]) <= 1.25 * pixel + 1e-3)
    assert not np.allclose(keypoints, e2e["preds"], atol=1e-3)


def test_runtime_chunks_and_matches_the_module(hrnet_reference_dir):
    import torch

    from pose.runtime import TorchRuntime

    io = np.load(hrnet_reference_dir / "dev_tiny_io.npz")
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 17, 4, stride=4)
    whole = TorchRuntime(model)(io["input"])
    chunked = TorchRuntime(model, max_batch=1)(io["input"])
    assert whole.shape == (2, 17, 40, 32) and whole.dtype == np.float32
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="float16"):
        TorchRuntime(model, dtype="float16")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        TorchRuntime(model)(io["input"][0])


def test_disable_tf32_keeps_both_flag_apis_readable():
    import torch

    from pose.runtime import disable_tf32

    disable_tf32()
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.conv.fp32_precision != "tf32"
