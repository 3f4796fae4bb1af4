"""MPII PCKh evaluator: hand-computed PCKh, Mean, Mean@0.1 (official 0.11 row), file formats, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import savemat

from evaluation.mpii import MPII_SHORT_NAMES, MpiiGroundTruth, evaluate_pckh, load_ground_truth, load_predictions

HEAD, LSHO, RANK, PELV = (MPII_SHORT_NAMES.index(n) for n in ("head", "lsho", "rank", "pelv"))
HEAD_SIZE = 0.6 * np.hypot(10.0, 10.0)


def case():
    """3 people with 10 x 10 px head boxes; predictions = GT + known errors (in head sizes, along x)."""
    rng = np.random.default_rng(0)
    joints = rng.uniform(50, 400, size=(3, 16, 2))
    visible = np.ones((3, 16), bool)
    visible[2, RANK] = False
    boxes = np.array([[[20.0, 30.0], [30.0, 40.0]]] * 3)
    preds = joints.copy()
    preds[0, HEAD, 0] += 0.6 * HEAD_SIZE  # wrong at 0.5
    preds[1, LSHO, 0] += 0.105 * HEAD_SIZE  # right at 0.11, wrong at 0.10
    preds[:, PELV, 0] += 2.0 * HEAD_SIZE  # wrong, but pelvis is left out of Mean
    preds[2, RANK, 0] += 5.0 * HEAD_SIZE  # invisible: not counted
    return MpiiGroundTruth(joints, visible, boxes), preds


def test_hand_computed_pckh():
    gt, preds = case()
    result = evaluate_pckh(gt, preds)
    assert result.pckh[HEAD] == pytest.approx(200 / 3)
    assert result.pckh[PELV] == 0.0
    assert result.pckh[RANK] == 100.0 and result.counts[RANK] == 2
    assert result.summary["Head"] == pytest.approx(200 / 3)
    assert result.summary["Shoulder"] == 100.0
    # 14 joint types x 3 people - 1 invisible = 41 counted; 1 wrong at 0.5
    assert result.summary["Mean"] == pytest.approx(100 * 40 / 41)
    assert result.low_threshold == pytest.approx(0.11)
    assert result.summary["Mean@0.1"] == pytest.approx(100 * 40 / 41)
    literal = evaluate_pckh(gt, preds, low_threshold_index=10)
    assert literal.low_threshold == pytest.approx(0.10)
    assert literal.summary["Mean@0.1"] == pytest.approx(100 * 39 / 41)
    assert list(result.summary) == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean@0.1"]


def write_official(tmp_path, gt, preds_one_based):
    names = np.empty((1, 16), dtype=object)
    for k, name in enumerate(MPII_SHORT_NAMES):
        names[0, k] = np.array([name])
    savemat(tmp_path / "gt_valid.mat", {
        "pos_gt_src": np.transpose(gt.keypoints, (1, 2, 0)),
        "jnt_missing": (~gt.visible).T.astype(np.float64),
        "headboxes_src": np.transpose(gt.head_boxes, (1, 2, 0)),
        "dataset_joints": names,
    })
    savemat(tmp_path / "pred.mat", {"preds": preds_one_based})
    return tmp_path / "gt_valid.mat", tmp_path / "pred.mat"


def test_official_mat_files_and_zero_based_npy_agree(tmp_path):
    gt, preds = case()
    gt_path, pred_path = write_official(tmp_path, gt, preds)
    loaded = load_ground_truth(gt_path)
    assert loaded.keypoint_names == MPII_SHORT_NAMES
    np.testing.assert_array_equal(loaded.visible, gt.visible)
    from_mat = evaluate_pckh(loaded, load_predictions(pred_path))
    np.save(tmp_path / "pred.npy", preds - 1.0)  # our estimator's 0-based pixels
    from_npy = evaluate_pckh(loaded, load_predictions(tmp_path / "pred.npy"))
    assert from_mat.summary == from_npy.summary
    assert from_mat.summary["Mean"] == pytest.approx(100 * 40 / 41)


def test_bad_files_are_named(tmp_path):
    bad = tmp_path / "gt.json"
    bad.write_text(json.dumps({"pos_gt_src": [[[0, 0]] * 16]}))
    with pytest.raises(ValueError, match="gt.json.*jnt_missing"):
        load_ground_truth(bad)
    np.save(tmp_path / "p.npy", np.zeros((2, 17, 2)))
    with pytest.raises(ValueError, match="p.npy"):
        load_predictions(tmp_path / "p.npy")


@pytest.mark.parametrize(
    ("name", "content", "which", "message"),
    [
        ("gt_valid.mat", b"not a mat file", "gt", "cannot be read as MPII ground truth"),
        ("gt.json", b"[]", "gt", "expected an object"),
        ("pred.mat", b"not a mat file", "pred", "cannot be read as MPII predictions"),
        ("pred.json", b'{"a": 1}', "pred", "field 'preds' missing"),
        ("pred.json", b'{"preds": [["x"]]}', "pred", "expected an array of numbers"),
        ("pred.json", b"nonsense", "pred", "cannot be read as MPII predictions"),
    ],
)
def test_malformed_files_are_named_with_exit_status_2(tmp_path, caplog, name, content, which, message):
    import main

    gt, preds = case()
    paths = dict(zip(("gt", "pred"), write_official(tmp_path, gt, preds)))
    bad = tmp_path / "bad" / name
    bad.parent.mkdir()
    bad.write_bytes(content)
    paths[which] = bad
    assert main.main(["mpii", "eval", "--gt", str(paths["gt"]), "--pred", str(paths["pred"])]) == 2
    assert str(bad) in caplog.text and message in caplog.text


def test_cli(tmp_path, capsys):
    import main

    gt, preds = case()
    gt_path, pred_path = write_official(tmp_path, gt, preds)
    out = tmp_path / "m.json"
    assert main.main(["mpii", "eval", "--gt", str(gt_path), "--pred", str(pred_path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| Arch | Head | Shoulder | Elbow | Wrist | Hip | Knee | Ankle | Mean | Mean@0.1 |" in printed
    assert "threshold 0.11" in printed
    assert json.loads(out.read_text())["summary"]["Mean"] == pytest.approx(100 * 40 / 41)


def test_cli_unwritable_json_is_a_clear_error(tmp_path, caplog):
    import main

    gt, preds = case()
    gt_path, pred_path = write_official(tmp_path, gt, preds)
    out = tmp_path / "m.json"
    out.mkdir()
    assert main.main(["mpii", "eval", "--gt", str(gt_path), "--pred", str(pred_path), "--json", str(out)]) == 2
    assert f"cannot write the results to {out}" in caplog.text
