"""PoseTrack21 scoring (evaluation/posetrack21.py): hand-worked HOTA / mAP cases, the official kit's numbers, errors.

The hand-worked sequences use people far apart (hundreds of pixels, head size
about 42 px), so every joint matches only its own person and each number
follows from counting: TP, FN, FP per joint, and the (GT id, predicted id)
match counts of AssA. `tests/data/posetrack21_kit` holds a generated set and
the official kit's results for it (its README says how they were made).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest

from evaluation import legacy_sort, posetrack21
from evaluation.legacy_sort import argsort_numpy1, tie_order_matters
from evaluation.posetrack21 import COLUMNS, PERCENT_FIELDS, evaluate_paths
from evaluation.posetrack21_files import JOINT_NAMES, PoseTrack21FormatError

KIT_SET = Path(__file__).parent / "data" / "posetrack21_kit"
NAME = "000001_mpii_test.json"
HEAD_SIDE = 50.0  # head boxes are HEAD_SIDE x HEAD_SIDE: head size 0.6 x its diagonal
HEAD_SIZE = 0.6 * math.hypot(HEAD_SIDE, HEAD_SIDE)
# PoseTrack's 17 keypoints in pixels around a person's nose (ears, slots 3 and 4, are dropped by the kit)
SKELETON = np.array([[0, 0], [0, 25], [0, -20], [0, 0], [0, 0], [40, 40], [-40, 40], [50, 80], [-50, 80],
                     [55, 120], [-55, 120], [20, 130], [-20, 130], [25, 185], [-25, 185], [25, 240], [-25, 240]], float)


def person(track_id: int, x: float, y: float = 200.0, *, shift: float = 0.0, score: float = 0.9) -> dict:
    """A person (nose at x, y) shifted right by `shift` pixels; every joint present."""
    points = SKELETON + [x + shift, y]
    keypoints = np.column_stack([points, np.ones(17)])
    keypoints[[3, 4]] = 0
    return {"track_id": track_id, "keypoints": keypoints.ravel().tolist(), "scores": [score] * 17,
            "bbox_head": [x - HEAD_SIDE / 2, y - HEAD_SIDE / 2, HEAD_SIDE, HEAD_SIDE], "person_id": track_id}


def write_sequence(folder: Path, frames: list[list[dict]], *, labeled: list[bool] | None = None,
                   regions: dict[int, list[list[float]]] | None = None, name: str = NAME) -> Path:
    """One PoseTrack21 file: frame t has image id 1000 + t; regions: frame -> [[x...], [y...]] of one polygon."""
    images, annotations = [], []
    for t, people in enumerate(frames):
        region = (regions or {}).get(t)
        images.append({"id": 1000 + t, "file_name": f"images/val/{name[:-5]}/{t:06d}.jpg",
                       "is_labeled": True if labeled is None else labeled[t],
                       "ignore_regions_x": [region[0]] if region else [], "ignore_regions_y": [region[1]] if region else []})
        annotations += [{**p, "image_id": 1000 + t} for p in people]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def score(tmp_path: Path, gt: list[list[dict]], pred: list[list[dict]], **kwargs) -> dict:
    clean = kwargs.pop("clean", False)
    write_sequence(tmp_path / "gt", gt, **kwargs)
    write_sequence(tmp_path / "pred", pred, **kwargs)
    return evaluate_paths(tmp_path / "gt", tmp_path / "pred", clean=clean).to_dict()


def assert_every_joint(result: dict, field: str, expected: float, section: str = "hota") -> None:
    values = result[section][field]
    assert list(values) == list(COLUMNS)
    assert list(values.values()) == pytest.approx([expected] * 16, abs=1e-9), field


def two_people(frames: int = 4) -> list[list[dict]]:
    return [[person(1, 300), person(2, 900)] for _ in range(frames)]


def test_perfect_prediction_scores_100_everywhere(tmp_path):
    result = score(tmp_path, two_people(), two_people())
    for field in PERCENT_FIELDS:
        assert_every_joint(result, field, 100.0)
    assert result["counts"]["HOTA_TP"]["Nose"] == 8 and result["counts"]["HOTA_TP"]["Total"] == 8 * 15
    assert result["counts"]["HOTA_FN"]["Total"] == 0 and result["counts"]["HOTA_FP"]["Total"] == 0
    assert all(v == pytest.approx(100.0) for row in result["ap"].values() for v in row.values())


def test_one_id_switch_half_way_halves_association(tmp_path):
    gt = [[person(1, 300)] for _ in range(4)]
    pred = [[person(1 if t < 2 else 2, 300)] for t in range(4)]
    result = score(tmp_path, gt, pred)
    # 4 matches per joint: 2 with id 1, 2 with id 2; each pair: 2 x 2 / (4 GT + 2 predicted - 2 matched) = 1
    assert_every_joint(result, "DetA", 100.0)
    assert_every_joint(result, "AssA", 100 * (1 + 1) / 4)
    assert_every_joint(result, "AssRe", 100 * (2 * 2 / 4 + 2 * 2 / 4) / 4)
    assert_every_joint(result, "AssPr", 100.0)
    assert_every_joint(result, "FragA", 50.0)  # two runs of 2: (2 x 2 / 4 + 2 x 2 / 4) / 4
    assert_every_joint(result, "HOTA", 100 * math.sqrt(0.5))
    assert_every_joint(result, "LocA", 100.0)


def test_missed_person_halves_detection(tmp_path):
    pred = [[person(1, 300)] for _ in range(4)]
    result = score(tmp_path, two_people(), pred)
    assert_every_joint(result, "DetA", 50.0)
    assert_every_joint(result, "DetRe", 50.0)
    assert_every_joint(result, "DetPr", 100.0)
    assert_every_joint(result, "AssA", 100.0)
    assert_every_joint(result, "HOTA", 100 * math.sqrt(0.5))
    assert result["counts"]["HOTA_FN"]["Total"] == 4 * 15
    assert result["ap"]["recall"]["Total"] == pytest.approx(50.0)
    assert result["ap"]["map"]["Total"] == pytest.approx(50.0)


REGION = [[1000.0, 1500.0, 1500.0, 1000.0], [0.0, 0.0, 720.0, 720.0]]  # x 1000..1500, all heights


@pytest.mark.parametrize("fp_x, expected_deta", [(1200.0, 100.0), (600.0, 100 * 4 / 5)])
def test_false_positive_inside_an_ignore_region_is_dropped(tmp_path, fp_x, expected_deta):
    gt = [[person(1, 300)] for _ in range(4)]
    pred = [[person(1, 300)] for _ in range(4)]
    pred[2].append(person(7, fp_x, score=0.1))
    result = score(tmp_path, gt, pred, regions={2: REGION})
    # inside the region the false positive vanishes; outside it adds one FP per joint: DetA 4 / (4 + 1)
    assert_every_joint(result, "DetA", expected_deta)
    assert_every_joint(result, "AssA", 100.0)
    assert_every_joint(result, "HOTA", math.sqrt(expected_deta * 100))


def test_jitter_of_known_size_passes_only_the_low_thresholds(tmp_path):
    gt = [[person(1, 300)] for _ in range(4)]
    pred = [[person(1, 300, shift=0.2 * HEAD_SIZE)] for _ in range(4)]
    result = score(tmp_path, gt, pred)
    similarity = 1 - 0.2 / 0.5001  # 0.60008: thresholds 0.05 ... 0.60 pass, 0.65 ... 0.95 do not
    passed = 12
    assert_every_joint(result, "DetA", 100 * passed / 19)
    assert_every_joint(result, "AssA", 100 * passed / 19)
    assert_every_joint(result, "HOTA", 100 * passed / 19)
    # the kit's LocA is 1 at thresholds without any match
    assert_every_joint(result, "LocA", 100 * (passed * similarity + 19 - passed) / 19)
    assert_every_joint(result, "HOTA(0)", 100.0)
    assert_every_joint(result, "LocA(0)", 100 * similarity)
    assert result["ap"]["map"]["Total"] == pytest.approx(100.0)  # 0.2 head sizes is a PCKh match


def test_frame_without_predicted_people_adds_the_whole_sequence_to_misses(tmp_path):
    gt = [[person(1, 300)] for _ in range(4)]
    pred = [[person(1, 300)] for _ in range(3)] + [[]]
    kit = score(tmp_path / "kit", gt, pred)
    clean = score(tmp_path / "clean", gt, pred, clean=True)
    # the kit: FN += all 4 GT joints of the sequence (per joint); clean: the frame's 1
    assert_every_joint(kit, "DetA", 100 * 3 / (3 + 4))
    assert_every_joint(clean, "DetA", 100 * 3 / (3 + 1))
    assert_every_joint(kit, "AssA", 100 * 3 * 3 / 4 / 3)  # 3 matches of a GT id seen 4 times
    # a predicted person without any joint is not an empty frame: the kit counts only that frame's misses
    jointless = [[person(1, 300)] for _ in range(3)] + [[{**person(1, 300), "keypoints": [0] * 51}]]
    assert_every_joint(score(tmp_path / "jointless", gt, jointless), "DetA", 100 * 3 / 4)


def test_only_labeled_frames_count(tmp_path):
    gt = [[person(1, 300)] for _ in range(4)]
    pred = [[person(1, 300)] for _ in range(4)]
    pred[1] = [person(1, 300), person(5, 900)]  # a false positive in an unlabeled frame
    result = score(tmp_path, gt, pred, labeled=[True, False, True, True])
    assert_every_joint(result, "HOTA", 100.0)
    assert result["counts"]["HOTA_TP"]["Nose"] == 3


def test_labeled_frame_with_every_gt_person_ignored_is_scored_where_the_kit_crashes(tmp_path, caplog):
    gt = [[person(1, 300)], [person(1, 300)], [person(2, 1200)]]
    pred = [[person(1, 300)], [person(1, 300)], [person(1, 300)]]
    with caplog.at_level(logging.WARNING):
        result = score(tmp_path, gt, pred, regions={2: REGION})
    assert "official kit crashes" in caplog.text and NAME in caplog.text
    assert_every_joint(result, "DetA", 100 * 2 / 3)  # the prediction of frame 2 is a false positive


def test_prediction_images_need_not_match_the_ground_truth(tmp_path, caplog):
    gt = [[person(1, 300)] for _ in range(3)]
    write_sequence(tmp_path / "gt", gt)
    path = write_sequence(tmp_path / "pred", gt)
    document = json.loads(path.read_text())
    del document["images"]  # the kit needs the GT's images list, in order; we align by image id
    path.write_text(json.dumps(document))
    with caplog.at_level(logging.INFO):
        result = evaluate_paths(tmp_path / "gt", tmp_path / "pred").to_dict()
    assert "scored by image id" in caplog.text
    assert_every_joint(result, "HOTA", 100.0)


def test_predictions_without_track_ids_give_map_only(tmp_path, caplog):
    gt = [[person(1, 300)] for _ in range(3)]
    pred = [[{k: v for k, v in person(1, 300).items() if k != "track_id"}] for _ in range(3)]
    write_sequence(tmp_path / "gt", gt)
    write_sequence(tmp_path / "pred", pred)
    metrics = evaluate_paths(tmp_path / "gt", tmp_path / "pred")
    assert metrics.hota is None and "HOTA is not evaluated" in caplog.text
    assert metrics.ap["map"]["Total"] == pytest.approx(100.0)
    assert "HOTAeypoints: not evaluated" in metrics.format_tables()


@pytest.mark.parametrize("change, message", [
    (lambda doc: doc["annotations"].append(dict(doc["annotations"][0])), "used for more than one person"),
    (lambda doc: doc["annotations"][0].update(track_id=-1), "track_id -1 is negative"),
    (lambda doc: doc["annotations"][0].update(keypoints=[1.0] * 50), "'keypoints' must be a list of 51"),
    (lambda doc: doc["annotations"][0]["keypoints"].__setitem__(5, "x"), "not a number"),
    (lambda doc: doc["annotations"][0].update(scores=[0.5] * 15), "'scores' must be a list of 17"),
])
def test_bad_prediction_files_are_refused_naming_the_file(tmp_path, change, message):
    gt = [[person(1, 300)] for _ in range(2)]
    write_sequence(tmp_path / "gt", gt)
    path = write_sequence(tmp_path / "pred", gt)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(PoseTrack21FormatError, match=re.escape(message)) as error:
        evaluate_paths(tmp_path / "gt", tmp_path / "pred")
    assert str(path) in str(error.value)


def test_missing_files_and_flags_are_clear_errors(tmp_path):
    gt = [[person(1, 300)]]
    path = write_sequence(tmp_path / "gt", gt)
    (tmp_path / "pred").mkdir()
    with pytest.raises(FileNotFoundError, match="no prediction file for 1 of the 1 GT sequences"):
        evaluate_paths(tmp_path / "gt", tmp_path / "pred")
    document = json.loads(path.read_text())
    del document["images"][0]["is_labeled"]
    path.write_text(json.dumps(document))
    write_sequence(tmp_path / "pred", gt)
    with pytest.raises(PoseTrack21FormatError, match="needs 'is_labeled'"):
        evaluate_paths(tmp_path / "gt", tmp_path / "pred")


def test_the_kit_layout_with_a_sequences_folder_is_read(tmp_path):
    gt = [[person(1, 300)] for _ in range(2)]
    write_sequence(tmp_path / "gt", gt)
    write_sequence(tmp_path / "tracker" / "sequences", gt)
    assert evaluate_paths(tmp_path / "gt", tmp_path / "tracker").hota["HOTA"][-1] == pytest.approx(100.0)


def test_equals_the_official_kit_on_its_reference_set():
    expected = json.loads((KIT_SET / "kit_results.json").read_text())
    result = evaluate_paths(KIT_SET / "gt", KIT_SET / "pred").to_dict()
    for section in ("hota", "counts", "ap"):
        assert set(result[section]) == set(expected[section])
        for field, row in expected[section].items():
            assert result[section][field] == pytest.approx(row, abs=1e-9), f"{section} {field}"


def test_tied_scores_are_ranked_as_numpy_1_ranks_them():
    scores = np.array([0.5, 0.25, 0.5, 0.5, -9999, 0.25, 0.5, 0.5, 0.25, -9999, 0.5, 0.75, 0.5, 0.5, 0.25, 0.5, 0.5,
                       0.5, 0.25, 0.5, 0.25, 0.5, 0.5, -9999, 0.5, 0.5, 0.25, 0.5, 0.5, 0.75, 0.5, 0.5, 0.25, 0.5, 0.5,
                       0.5, 0.25, 0.5, 0.5, 0.5])
    # np.argsort(scores) under numpy 1.23.5 (the kit's environment)
    numpy1 = [23, 4, 9, 20, 18, 26, 14, 8, 32, 5, 36, 1, 35, 33, 24, 31, 30, 28, 27, 37, 25, 34, 0, 19, 21, 38, 17, 16,
              15, 13, 12, 10, 7, 6, 3, 2, 22, 39, 29, 11]
    assert argsort_numpy1(scores).tolist() == numpy1
    # introsort falls back to numpy's heapsort past its depth limit; np.argsort(kind="heapsort") under numpy 1.23.5:
    numpy1_heapsort = [4, 23, 9, 32, 5, 8, 20, 14, 18, 36, 26, 1, 6, 13, 0, 12, 24, 2, 21, 10, 39, 22, 19, 37, 25, 35,
                       27, 28, 17, 30, 34, 33, 16, 31, 15, 7, 3, 38, 29, 11]
    keys = np.unique(scores, return_inverse=True)[1].tolist()
    order = list(range(len(scores)))
    legacy_sort._heapsort(keys, order, 0, len(scores) - 1)
    assert order == numpy1_heapsort
    rng = np.random.default_rng(3)
    values = rng.normal(size=500)
    assert argsort_numpy1(values).tolist() == np.argsort(values, kind="stable").tolist()  # no ties: the sorted order
    assert tie_order_matters(np.array([0.5, 0.5]), np.array([0, 1]))
    assert not tie_order_matters(np.array([0.5, 0.5, 0.7]), np.array([1, 1, 0]))


def test_cli_json_and_printed_table_agree(tmp_path, capsys):
    import main

    out = tmp_path / "metrics.json"
    assert main.main(["posetrack", "eval", "--gt", str(KIT_SET / "gt"), "--pred", str(KIT_SET / "pred"),
                      "--json", str(out)]) == 0  # the benchmark is detected from PoseTrack21's person_id
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["benchmark"] == "posetrack21"
    rows = {line.split()[0]: line.split()[1:] for line in printed.splitlines() if line.startswith("\t")}
    assert rows["Metric"] == []
    header = printed.splitlines()[printed.splitlines().index("\tMetric") - 1].split()
    assert header == list(JOINT_NAMES) + ["Total"]
    for field in PERCENT_FIELDS:
        assert rows[field] == ["{0:1.5g}".format(result["hota"][field][c]) for c in COLUMNS], field
    for field in posetrack21.COUNT_FIELDS:
        assert rows[field] == ["%d" % int(result["counts"][field][c]) for c in COLUMNS], field
    lines = printed.splitlines()
    for name in ("map", "precision", "recall"):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"[{name}]"))
        assert lines[at].split()[1:] == list(result["ap"][name])
        assert lines[at + 1] == "Summary :"
        assert lines[at + 2].split() == ["%.1f" % v for v in result["ap"][name].values()]


def test_cli_benchmark_flag_and_clean_note(tmp_path, capsys):
    import main

    gt = [[person(1, 300)] for _ in range(2)]
    write_sequence(tmp_path / "gt", gt)
    write_sequence(tmp_path / "pred", gt)
    args = ["posetrack", "eval", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred")]
    assert main.main([*args, "--benchmark", "posetrack21", "--clean"]) == 0
    printed = capsys.readouterr().out
    assert "clean mode: the official kit's surprising rules fixed" in printed and "HOTAeypoints->Summary" in printed


def test_integer_keypoints_truncate_scores_unless_clean(tmp_path):
    gt = [[person(1, 300)]]
    false_positive, true_positive = person(7, 900, score=0.9), person(1, 300, score=0.3)
    for p in (false_positive, true_positive):
        p["keypoints"] = [int(round(v)) for v in p["keypoints"]]  # all JSON integers: the kit's array is integer
    pred = [[false_positive, true_positive]]
    kit = score(tmp_path / "kit", gt, pred)
    clean = score(tmp_path / "clean", gt, pred, clean=True)
    # clean: the false positive (0.9) outranks the match (0.3): AP 1/2. The kit truncates both scores to 0; numpy 1's
    # sort keeps two equal values in file order, reversed by [::-1]: the match comes first, AP 100
    assert clean["ap"]["map"]["Total"] == pytest.approx(50.0)
    assert kit["ap"]["map"]["Total"] == pytest.approx(100.0)
