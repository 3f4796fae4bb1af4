"""Detectors: boxes from files, ground-truth boxes, torchvision networks (random weights, no downloads)."""

from __future__ import annotations

import argparse
import json
import re
import urllib.error

import numpy as np
import pytest
import torch
import torchvision

from detector import FileDetector, GroundTruthDetector, ImageIdLookup
from detector import torchvision_detector as tvd
from cli.options import add_detector_arguments
from pipeline.models import build_detector as build_from_args
from core.boxes import clean_ground_truth_box
from core.types import Detections, Frame

FAST = "fasterrcnn_mobilenet_v3_large_fpn"
SMALL_INPUT = {"input_min_size_px": 96, "input_max_size_px": 128}


def make_frame(index=0, path=None, size=(48, 64), seed=0):
    image = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    return Frame(index=index, timestamp_s=0.0, image=image, source="test", path=path)


# ---------------------------------------------------------------- files


@pytest.fixture(scope="module")
def coco_dir(data_dir):
    return data_dir / "coco_mini"


@pytest.fixture(scope="module")
def coco_det_entries(coco_dir):
    return json.loads((coco_dir / "test_coco_det_AP_H_56.json").read_text())


def test_file_detector_counts_per_coco_image_by_numeric_file_name(coco_dir):
    detector = FileDetector(coco_dir / "test_coco_det_AP_H_56.json")
    names = ["000000000785.jpg", "000000040083.jpg", "000000196141.jpg", "000000197388.jpg"]
    frames = [make_frame(i, str(coco_dir / name)) for i, name in enumerate(names)]
    counts = sorted(len(d) for d in detector(frames))
    assert counts == [22, 26, 33, 37]


def test_file_detector_threshold_and_order(coco_dir, coco_det_entries):
    detector = FileDetector(coco_dir / "test_coco_det_AP_H_56.json", score_threshold=0.5)
    results = [detector.detections_for_image_id(i) for i in detector.image_ids]
    assert sum(map(len, results)) == sum(e["score"] >= 0.5 for e in coco_det_entries) == 18
    for result in results:
        assert np.all(np.diff(result.scores) <= 0)
        assert np.all(result.scores >= 0.5)


def test_file_detector_converts_xywh_to_xyxy(coco_dir, coco_det_entries):
    detector = FileDetector(coco_dir / "test_coco_det_AP_H_56.json")
    best = max((e for e in coco_det_entries if e["image_id"] == 785), key=lambda e: e["score"])
    detections = detector([make_frame(path="000000000785.jpg")])[0]
    x, y, w, h = best["bbox"]
    np.testing.assert_allclose(detections.boxes[0], [x, y, x + w, y + h], rtol=1e-6)
    assert detections.boxes.dtype == np.float32
    raw_boxes, raw_scores = detector.boxes_xywh(785)
    assert raw_boxes.dtype == np.float64 and raw_boxes[0].tolist() == best["bbox"]
    assert raw_scores[0] == best["score"]


def test_file_detector_min_size_and_nms(coco_dir, coco_det_entries):
    all_boxes = FileDetector(coco_dir / "test_coco_det_AP_H_56.json").detections_for_image_id(197388)
    sized = FileDetector(coco_dir / "test_coco_det_AP_H_56.json", min_box_size_px=50).detections_for_image_id(197388)
    sides = all_boxes.boxes[:, 2:] - all_boxes.boxes[:, :2]
    assert len(sized) == int((sides >= 50).all(axis=1).sum()) < len(all_boxes)
    nms = FileDetector(coco_dir / "test_coco_det_AP_H_56.json", nms_iou_threshold=0.3).detections_for_image_id(197388)
    assert 0 < len(nms) < len(all_boxes)
    iou = torchvision.ops.box_iou(torch.from_numpy(nms.boxes), torch.from_numpy(nms.boxes)).numpy()
    assert (iou[~np.eye(len(nms), dtype=bool)] <= 0.3 + 1e-6).all()


def test_file_detector_posetrack_needs_and_uses_the_annotation_images(data_dir, caplog):
    root = data_dir / "posetrack18_mini"
    det_path = root / "annotations" / "test_posetrack18_human_detections.json"
    ann_path = root / "annotations" / "test_posetrack18_val.json"
    frames = [
        make_frame(0, str(root / "images/val/012834_mpii_test/000000.jpg")),
        make_frame(1, str(root / "images/val/009473_mpii_test/000000.jpg")),
        make_frame(2, str(root / "images/val/003418_mpii_test/000000.jpg")),
    ]
    detector = FileDetector(det_path, annotation_path=ann_path)
    assert [len(d) for d in detector(frames)] == [100, 78, 100]

    # Without the image list, "000000.jpg" reads as image id 0: no boxes, and a warning says so.
    plain = FileDetector(det_path)
    with caplog.at_level("WARNING"):
        assert [len(d) for d in plain(frames)] == [0, 0, 0]
    assert "no entry for image id 0" in caplog.text

    # The base name alone is ambiguous in PoseTrack.
    with pytest.raises(ValueError, match="listed several times"):
        detector([make_frame(path="elsewhere/000000.jpg")])
    with pytest.raises(ValueError, match="not listed"):
        detector([make_frame(path="images/val/999999_mpii_test/000001.jpg")])


def test_image_id_lookup_rules(data_dir):
    ann = data_dir / "coco_mini" / "test_coco.json"
    by_ann = ImageIdLookup(ann)
    assert by_ann(make_frame(path="/data/val2017/000000040083.jpg")) == 40083
    assert ImageIdLookup()(make_frame(path="000000196141.jpg")) == 196141
    assert ImageIdLookup()(make_frame(index=7)) == 7
    assert ImageIdLookup(key="index", index_offset=100)(make_frame(index=7, path="000000196141.jpg")) == 107
    with pytest.raises(ValueError, match="not a number"):
        ImageIdLookup()(make_frame(path="frame_a.jpg"))
    with pytest.raises(ValueError, match="has no path"):
        ImageIdLookup(key="path")(make_frame(index=3))
    with pytest.raises(ValueError, match="key must be one of"):
        ImageIdLookup(key="name")


@pytest.mark.parametrize(
    "content, error, message",
    [
        (None, FileNotFoundError, "does not exist"),
        ("{not json", ValueError, "not valid JSON"),
        ('{"info": 1}', ValueError, "not a detection file"),
        ('[{"image_id": 1, "score": 0.5}]', ValueError, "entry 0 needs 'image_id' and 'bbox'"),
        ('[{"image_id": 1, "bbox": [1, 2, 3], "score": 0.5}]', ValueError, r"bbox must be \[x, y, w, h\]"),
        ('[{"image_id": "a", "bbox": [1, 2, 3, 4], "score": 0.5}]', ValueError, "non-numeric"),
    ],
)
def test_file_detector_bad_files_name_the_file(tmp_path, content, error, message):
    path = tmp_path / "dets.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=message) as info:
        FileDetector(path)
    assert "dets.json" in str(info.value)


def test_file_detector_ignores_other_categories(tmp_path):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([
        {"image_id": 5, "category_id": 1, "bbox": [0, 0, 10, 20], "score": 0.9},
        {"image_id": 5, "category_id": 3, "bbox": [0, 0, 10, 20], "score": 0.95},
    ]))
    detections = FileDetector(path).detections_for_image_id(5)
    assert len(detections) == 1 and detections.scores[0] == pytest.approx(0.9)
    assert len(FileDetector(path).detections_for_image_id(6)) == 0


# ---------------------------------------------------------------- ground truth


def test_ground_truth_detector_on_coco(data_dir):
    ann_path = data_dir / "coco_mini" / "test_coco.json"
    annotation = json.loads(ann_path.read_text())
    detector = GroundTruthDetector(ann_path)
    counts = {i: len(detector.detections_for_image_id(i)) for i in detector.image_ids}
    with_keypoints = [a for a in annotation["annotations"] if max(a["keypoints"]) > 0]
    assert sum(counts.values()) == len(with_keypoints) == 12

    first = with_keypoints[0]
    image = next(i for i in annotation["images"] if i["id"] == first["image_id"])
    frame = make_frame(path=image["file_name"])
    detections = detector([frame])[0]
    x, y, w, h = clean_ground_truth_box(first["bbox"], image["width"], image["height"], area=first["area"])
    np.testing.assert_allclose(detections.boxes[0], [x, y, x + w, y + h], rtol=1e-6)
    np.testing.assert_array_equal(detections.scores, 1.0)

    raw = GroundTruthDetector(ann_path, official_cleaning=False)
    assert sum(len(raw.detections_for_image_id(i)) for i in raw.image_ids) == 14


def test_ground_truth_detector_on_posetrack_without_area(data_dir):
    ann_path = data_dir / "posetrack18_mini" / "annotations" / "test_posetrack18_val.json"
    detector = GroundTruthDetector(ann_path)
    frame = make_frame(path="posetrack/images/val/012834_mpii_test/000000.jpg")
    assert len(detector([frame])[0]) == 11
    with pytest.raises(ValueError, match="not in"):
        detector.boxes_xywh(123)


# ---------------------------------------------------------------- torchvision network


@pytest.fixture(scope="module")
def random_detector():
    """Random-weight MobileNetV3 Faster R-CNN whose classifier favours 'person', so boxes come out."""
    torch.manual_seed(0)
    detector = tvd.build_detector(FAST, weights="random", score_threshold=0.0, nms_iou_threshold=None, **SMALL_INPUT)
    with torch.no_grad():
        detector.model.roi_heads.box_predictor.cls_score.bias[tvd.PERSON_LABEL] += 6.0
    return detector


def test_network_detections_contract(random_detector):
    frames = [make_frame(i, size=(60, 80), seed=i) for i in range(3)]
    results = random_detector(frames)
    assert len(results) == 3
    assert any(len(result) > 0 for result in results)
    for result in results:
        assert isinstance(result, Detections)
        assert result.boxes.dtype == np.float32 and result.scores.dtype == np.float32
        assert result.boxes.shape == (len(result), 4)
        assert (result.boxes[:, [0, 2]] >= 0).all() and (result.boxes[:, [0, 2]] <= 80).all()
        assert (result.boxes[:, [1, 3]] >= 0).all() and (result.boxes[:, [1, 3]] <= 60).all()
        assert (result.boxes[:, 2:] >= result.boxes[:, :2]).all()
        assert np.all(np.diff(result.scores) <= 0)
    assert random_detector([]) == []


def test_network_boxes_are_in_original_pixels(random_detector):
    """The network sees a 96x128 input; boxes must come back in the 300x400 frame's pixels."""
    result = random_detector([make_frame(size=(300, 400), seed=3)])[0]
    assert len(result) > 0
    assert (result.boxes >= 0).all() and (result.boxes[:, [0, 2]] <= 400).all() and (result.boxes[:, [1, 3]] <= 300).all()
    assert result.boxes[:, 2].max() > 200 and result.boxes[:, 3].max() > 150


def test_network_batched_call_equals_per_frame_calls(random_detector):
    frames = [make_frame(i, size=(60, 80), seed=10 + i) for i in range(3)]
    batched = random_detector(frames)
    for frame, result in zip(frames, batched):
        single = random_detector([frame])[0]
        np.testing.assert_allclose(result.boxes, single.boxes, atol=1e-3)
        np.testing.assert_allclose(result.scores, single.scores, atol=1e-5)


class FakeModel(torch.nn.Module):
    """Stands in for a torchvision detector: returns fixed outputs, records its input."""

    def __init__(self, output):
        super().__init__()
        self.output = output
        self.inputs = None

    def forward(self, images):
        self.inputs = images
        return [dict(self.output) for _ in images]


def test_network_filtering_person_threshold_size_nms():
    output = {
        "boxes": torch.tensor([
            [0.0, 0.0, 20.0, 40.0],    # person 0.9
            [1.0, 1.0, 21.0, 41.0],    # person 0.8, overlaps the first (IoU ~0.9)
            [50.0, 0.0, 70.0, 40.0],   # car 0.99
            [30.0, 0.0, 33.0, 40.0],   # person 0.7, 3 px wide
            [40.0, 10.0, 60.0, 50.0],  # person 0.4, below threshold
            [70.0, 5.0, 90.0, 45.0],   # person 0.6
        ]),
        "scores": torch.tensor([0.9, 0.8, 0.99, 0.7, 0.4, 0.6]),
        "labels": torch.tensor([1, 1, 3, 1, 1, 1]),
    }
    frame = make_frame(size=(50, 100))
    plain = tvd.TorchvisionDetector(FakeModel(output), score_threshold=0.5, nms_iou_threshold=None)
    np.testing.assert_allclose(plain([frame])[0].scores, [0.9, 0.8, 0.7, 0.6])
    sized = tvd.TorchvisionDetector(FakeModel(output), score_threshold=0.5, min_box_size_px=5, nms_iou_threshold=None)
    np.testing.assert_allclose(sized([frame])[0].scores, [0.9, 0.8, 0.6])
    nms = tvd.TorchvisionDetector(FakeModel(output), score_threshold=0.5, min_box_size_px=5, nms_iou_threshold=0.5)
    result = nms([frame])[0]
    np.testing.assert_allclose(result.scores, [0.9, 0.6])
    np.testing.assert_allclose(result.boxes, [[0, 0, 20, 40], [70, 5, 90, 45]])


def test_network_input_is_rgb_in_unit_range():
    model = FakeModel({"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)})
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 255  # blue in BGR
    tvd.TorchvisionDetector(model)([Frame(0, 0.0, image)])
    tensor = model.inputs[0]
    assert tensor.shape == (3, 4, 6) and tensor.dtype == torch.float32
    assert tensor[2].eq(1.0).all() and tensor[:2].eq(0.0).all()


def test_half_precision_needs_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        tvd.TorchvisionDetector(FakeModel({}), device="cpu", half=True)


def test_auto_name_and_unknown_name():
    assert tvd.resolve_detector_name("auto", "cuda:0") == "fasterrcnn_resnet50_fpn_v2"
    assert tvd.resolve_detector_name("auto", "cpu") == "ssdlite320_mobilenet_v3_large"
    assert tvd.resolve_detector_name("accurate", "cpu") == "fasterrcnn_resnet50_fpn_v2"
    assert tvd.resolve_detector_name("fast", "cuda") == "ssdlite320_mobilenet_v3_large"
    assert tvd.resolve_detector_name(FAST, "cpu") == FAST
    assert "fasterrcnn_resnet50_fpn_v2" in tvd.supported_detector_names()
    with pytest.raises(ValueError, match="Unknown detector 'yolo'.*fasterrcnn_mobilenet_v3_large_fpn"):
        tvd.build_torchvision_model("yolo", weights="random")


@pytest.fixture()
def empty_hub(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


def test_offline_without_cache_names_file_url_and_folder(empty_hub, monkeypatch):
    monkeypatch.setenv("HRTRACK_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(tvd.DetectorWeightsError) as info:
        tvd.build_detector(FAST)
    message = str(info.value)
    assert "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth" in message
    assert "https://download.pytorch.org/models/fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth" in message
    assert str(empty_hub / "checkpoints") in message
    assert "offline" in message and "--det-weights" in message


def test_download_failure_gives_the_same_help(empty_hub, monkeypatch):
    def refuse(url, dst, hash_prefix=None, progress=True):
        assert hash_prefix == "fb6a3cc7"  # torchvision's check_hash rule: the tag in the file name
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    with pytest.raises(tvd.DetectorWeightsError, match="download failed.*no route to host") as info:
        tvd.fetch_pretrained_weights(FAST, offline=False)
    assert str(empty_hub / "checkpoints" / "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth") in str(info.value)


def test_cached_pretrained_file_is_used_without_network(empty_hub, random_detector, monkeypatch):
    target = empty_hub / "checkpoints" / "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"
    target.parent.mkdir(parents=True)
    torch.save(random_detector.model.state_dict(), target)
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("must not download"))
    detector = tvd.build_detector(FAST, score_threshold=0.0, nms_iou_threshold=None, offline=True, **SMALL_INPUT)
    frame = make_frame(size=(60, 80), seed=1)
    np.testing.assert_allclose(detector([frame])[0].boxes, random_detector([frame])[0].boxes, atol=1e-4)


def test_frozen_layout_state_dict_builds_what_torchvision_builds(random_detector, tmp_path, monkeypatch):
    """Pretrained torchvision files have FrozenBatchNorm2d (no num_batches_tracked); we must match the builder."""
    frozen = {k: v for k, v in random_detector.model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "frozen.pt"
    torch.save(frozen, path)
    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", lambda self, *a, **k: dict(frozen))
    reference = torchvision.models.get_model(FAST, weights="DEFAULT", min_size=96, max_size=128, box_score_thresh=0.0)
    ours = tvd.build_torchvision_model(FAST, weights=path, score_threshold=0.0, input_min_size_px=96, input_max_size_px=128)
    assert str(ours) == str(reference)
    images = [torch.rand(3, 60, 80, generator=torch.Generator().manual_seed(2))]
    with torch.no_grad():
        expected, actual = reference.eval()(images)[0], ours(images)[0]
    torch.testing.assert_close(actual["boxes"], expected["boxes"])
    torch.testing.assert_close(actual["scores"], expected["scores"])


@pytest.mark.slow  # about 3.5 CPU-seconds: builds two torchvision detectors
def test_local_state_dict_round_trip_and_mismatch(random_detector, tmp_path):
    good = tmp_path / "mine.pt"
    torch.save({"model": random_detector.model.state_dict()}, good)
    detector = tvd.build_detector(FAST, weights=good, score_threshold=0.0, nms_iou_threshold=None, **SMALL_INPUT)
    frame = make_frame(size=(60, 80), seed=5)
    np.testing.assert_allclose(detector([frame])[0].boxes, random_detector([frame])[0].boxes, atol=1e-4)

    wrong = tmp_path / "wrong.pt"
    torch.save(torchvision.models.get_model("ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None).state_dict(), wrong)
    with pytest.raises(tvd.DetectorWeightsError, match="wrong.pt do not match torchvision's 'fasterrcnn_mobilenet"):
        tvd.build_detector(FAST, weights=wrong)
    with pytest.raises(tvd.DetectorWeightsError, match="missing.pt does not exist"):
        tvd.build_detector(FAST, weights=tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(tvd.DetectorWeightsError, match="Cannot read detector weights .*junk.pt"):
        tvd.build_detector(FAST, weights=junk)


# ---------------------------------------------------------------- command-line options


def parse(argv):
    parser = argparse.ArgumentParser()
    add_detector_arguments(parser)
    return parser.parse_args(argv)


def test_cli_builds_file_and_ground_truth_detectors(data_dir):
    coco = data_dir / "coco_mini"
    file_detector = build_from_args(parse(["--det-file", str(coco / "test_coco_det_AP_H_56.json"), "--det-threshold", "0.5"]))
    assert isinstance(file_detector, FileDetector) and file_detector.score_threshold == 0.5
    gt = build_from_args(parse(["--gt-boxes", str(coco / "test_coco.json")]))
    assert isinstance(gt, GroundTruthDetector)
    with pytest.raises(ValueError, match="cannot be combined"):
        build_from_args(parse(["--det-file", "x.json", "--detector", FAST]))
    with pytest.raises(SystemExit):
        parse(["--det-file", "x.json", "--gt-boxes", "y.json"])


def test_cli_network_detector_offline_error(empty_hub):
    """The CPU default is SSDlite320; its real weights keep the torchvision download path and offline message."""
    args = parse(["--det-threshold", "0.3"])
    args.device, args.offline = "cpu", True
    with pytest.raises(tvd.DetectorWeightsError, match="ssdlite320_mobilenet_v3_large_coco-a79551df.pth"):
        build_from_args(args)
    args = parse(["--detector", "accurate"])
    args.device, args.offline = "cpu", True
    with pytest.raises(tvd.DetectorWeightsError, match="fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth"):
        build_from_args(args)


def test_weights_for_another_builder_are_summarised_not_listed(tmp_path):
    """A wrong file gives counts and the first few keys (torch's message listed all of them: 14.7 KB)."""
    wrong = tmp_path / "wrong.pt"
    torch.save(torchvision.models.get_model(FAST, weights=None, weights_backbone=None).state_dict(), wrong)
    with pytest.raises(tvd.DetectorWeightsError) as info:
        tvd.build_torchvision_model("ssdlite320_mobilenet_v3_large", weights=wrong)
    message = str(info.value)
    assert len(message) < 1500, message
    assert re.search(r"\d+ missing keys \(.*\.\.\. \(\d+ more\)\)", message)
    assert re.search(r"\d+ unexpected keys \(backbone\.body\.", message)
    assert "wrong.pt" in message and "ssdlite320_mobilenet_v3_large" in message


def test_cpu_frames_are_resized_to_the_network_size_first_and_boxes_come_back_in_frame_pixels():
    """SSDlite shrinks every frame to 320x320: we do it on 8-bit pixels, then map the boxes back."""
    model = FakeModel({"boxes": torch.tensor([[32.0, 64.0, 160.0, 320.0]]), "scores": torch.tensor([0.9]),
                       "labels": torch.tensor([1])})
    model.transform = torchvision.models.get_model("ssdlite320_mobilenet_v3_large", weights=None,
                                                   weights_backbone=None).transform
    detector = tvd.TorchvisionDetector(model, score_threshold=0.5)
    image = np.zeros((576, 768, 3), np.uint8)
    image[:288] = 255
    found = detector([Frame(0, 0.0, image)])[0]
    tensor = model.inputs[0]
    assert tensor.shape == (3, 320, 320)
    assert tensor[:, :150].eq(1.0).all() and tensor[:, 170:].eq(0.0).all()  # the same picture, smaller
    np.testing.assert_allclose(found.boxes, [[32 * 2.4, 64 * 1.8, 160 * 2.4, 320 * 1.8]], rtol=1e-6)


def test_network_input_size_follows_torchvision_resize_rule():
    rcnn = tvd.build_torchvision_model(FAST, weights="random")
    detector = tvd.TorchvisionDetector(rcnn)
    assert detector.network_input_size(576, 768) == (800, 1066)
    assert detector.network_input_size(100, 2000) == (66, 1333)  # the longer side caps it
    image = torch.rand(3, 576, 768)
    assert rcnn.transform.resize(image)[0].shape[-2:] == (800, 1066)


def test_cpu_calls_use_their_own_thread_count_and_restore_the_callers():
    seen = []

    class CountingModel(FakeModel):
        def forward(self, images):
            seen.append(torch.get_num_threads())
            return super().forward(images)

    before = torch.get_num_threads()
    model = CountingModel({"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)})
    tvd.TorchvisionDetector(model, cpu_threads=1)([Frame(0, 0.0, np.zeros((4, 6, 3), np.uint8))])
    assert seen == [1] and torch.get_num_threads() == before
    assert tvd.TorchvisionDetector(FakeModel({})).cpu_threads == max(1, before // 2)
