"""PoseTrack evaluator: hand-computed cases, poseval equivalence, real sample, CLI."""

from __future__ import annotations

import json
import math

import motmetrics as mm
import numpy as np
import pytest

from evaluation import posetrack
from evaluation.posetrack import MotAccumulator, evaluate_paths, points_in_polygon
from core.posetrack_format import scan_json_files
from tests import poseval_oracle
from tests.posetrack_synthetic import (
    copy_people,
    document,
    make_person,
    noisy_predictions,
    random_video,
    write_video,
)

RANKLE, LANKLE, NOSE = 0, 5, 13
HEAD_PX = 40.0
HEAD_SIZE = 0.6 * math.hypot(HEAD_PX, HEAD_PX)  # PCKh reference length of every synthetic person


def scene(num_frames: int = 3) -> list[list[dict]]:
    """Two people far apart, all 15 joints annotated, still."""
    return [[make_person(0, 200, 150, HEAD_PX), make_person(1, 800, 150, HEAD_PX)] for _ in range(num_frames)]


def evaluate(tmp_path, gt_frames, pred_frames, clean=False, **gt_options):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    write_video(gt_dir, "000001_mpii_test", document("000001_mpii_test", gt_frames, **gt_options))
    write_video(pred_dir, "000001_mpii_test", document("000001_mpii_test", pred_frames))
    return evaluate_paths(gt_dir, pred_dir, clean=clean)


def test_perfect_predictions_score_100(tmp_path):
    gt = scene()
    metrics = evaluate(tmp_path, gt, copy_people_frames(gt))
    for values in (metrics.ap, metrics.mota, metrics.motp, metrics.precision, metrics.recall):
        np.testing.assert_allclose(values, 100.0)
    assert metrics.counts["objects"].tolist() == [4] * 15  # 2 people x 2 frames: the last frame is left out


def copy_people_frames(frames):
    return [copy_people(people) for people in frames]


def test_jitter_beyond_threshold_costs_one_joint(tmp_path):
    gt = scene()
    pred = copy_people_frames(gt)
    pred[0][0]["joints"][RANKLE] += [0.51 * HEAD_SIZE, 0.0]  # just outside PCKh@0.5
    pred[0][0]["scores"][RANKLE] = 0.95  # the false positive ranks first
    metrics = evaluate(tmp_path, gt, pred)
    # AP, right ankle: ranks FP, TP x5 over 6 GT -> precision envelope 5/6 at every recall step of 1/6.
    assert metrics.ap[RANKLE] == pytest.approx(100 * 5 / 6 * 5 / 6)
    assert metrics.ap[LANKLE] == pytest.approx(100.0)
    # MOT (frames 0, 1): 4 objects, 1 miss and 1 FP on the right ankle.
    assert metrics.mota[RANKLE] == pytest.approx(50.0)
    assert metrics.group(metrics.mota)["ankle"] == pytest.approx(75.0)
    assert metrics.mota[15] == pytest.approx((50.0 + 14 * 100.0) / 15)
    clean = evaluate(tmp_path / "c", gt, pred, clean=True)  # all 3 frames: 6 objects
    assert clean.mota[RANKLE] == pytest.approx(100 * (1 - 2 / 6))


def test_jitter_within_threshold_sets_motp(tmp_path):
    gt = scene()
    pred = copy_people_frames(gt)
    shift = 0.2 * HEAD_SIZE
    for people in pred:
        for person in people:
            person["joints"] = person["joints"] + [shift, 0.0]
    metrics = evaluate(tmp_path, gt, pred)
    np.testing.assert_allclose(metrics.ap, 100.0)
    np.testing.assert_allclose(metrics.mota, 100.0)
    # poseval sums motmetrics' RAW events too, so every matched distance counts twice.
    np.testing.assert_allclose(metrics.motp, 100 * (1 - 2 * 0.2))
    clean = evaluate(tmp_path / "c", gt, pred, clean=True)
    np.testing.assert_allclose(clean.motp, 100 * (1 - 0.2))


def test_missed_person(tmp_path):
    gt = scene()
    pred = copy_people_frames(gt)
    del pred[1][1]
    metrics = evaluate(tmp_path, gt, pred)
    np.testing.assert_allclose(metrics.ap, 100 * 5 / 6)  # recall stops at 5/6 with precision 1
    np.testing.assert_allclose(metrics.mota, 75.0)  # 1 miss over 4 objects
    np.testing.assert_allclose(metrics.recall, 75.0)
    np.testing.assert_allclose(metrics.precision, 100.0)
    clean = evaluate(tmp_path / "c", gt, pred, clean=True)
    np.testing.assert_allclose(clean.mota, 100 * (1 - 1 / 6))


def test_empty_prediction_frame_is_a_dummy_in_compatible_mode(tmp_path):
    gt = scene()
    pred = copy_people_frames(gt)
    pred[0] = []
    metrics = evaluate(tmp_path, gt, pred)
    # poseval enters frame 0 as one dummy object + one dummy FP per joint: 3 objects, 1 miss, 1 FP.
    np.testing.assert_allclose(metrics.mota, 100 * (1 - 2 / 3))
    assert metrics.counts["false_positives"].tolist() == [1] * 15
    clean = evaluate(tmp_path / "c", gt, pred, clean=True)
    np.testing.assert_allclose(clean.mota, 100 * (1 - 2 / 6))  # two real misses, no FP
    assert clean.counts["false_positives"].tolist() == [0] * 15


def test_false_positive_person(tmp_path):
    gt = scene()
    pred = copy_people_frames(gt)
    ghost = make_person(7, 500, 400, HEAD_PX, score=0.1)
    pred[0].append(ghost)
    metrics = evaluate(tmp_path, gt, pred)
    np.testing.assert_allclose(metrics.ap, 100.0)  # the FP ranks last: recall 1 is reached first
    np.testing.assert_allclose(metrics.ap_precision, 100 * 6 / 7)
    np.testing.assert_allclose(metrics.mota, 75.0)  # 1 FP over 4 objects
    np.testing.assert_allclose(metrics.precision, 100 * 4 / 5)


def test_id_switch(tmp_path):
    gt = scene()
    pred = copy_people_frames(gt)
    for people in pred[1:]:
        people[0]["track_id"], people[1]["track_id"] = 1, 0
    metrics = evaluate(tmp_path, gt, pred)
    np.testing.assert_allclose(metrics.ap, 100.0)
    assert metrics.counts["switches"].tolist() == [2] * 15
    np.testing.assert_allclose(metrics.mota, 50.0)  # 2 switches over 4 objects
    clean = evaluate(tmp_path / "c", gt, pred, clean=True)
    np.testing.assert_allclose(clean.mota, 100 * (1 - 2 / 6))  # no new switch in frame 2


def test_ignore_region_and_unlabeled_frame(tmp_path):
    gt = scene(4)
    pred = copy_people_frames(gt)
    pred[0].append(make_person(9, 500, 400, HEAD_PX))  # FP inside the ignore region below
    region = np.array([[420.0, 330.0], [590.0, 330.0], [590.0, 700.0], [420.0, 700.0]])
    gt[3] = []  # unlabeled frame: predictions there cost nothing
    pred[3].append(make_person(10, 500, 400, HEAD_PX))
    metrics = evaluate(tmp_path, gt, pred, ignore_regions={0: [region]}, labeled=[True, True, True, False])
    np.testing.assert_allclose(metrics.ap, 100.0)
    np.testing.assert_allclose(metrics.mota, 100.0)
    assert metrics.num_frames == 3


def test_points_in_polygon_strict_interior():
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    points = np.array([[5, 5], [0, 5], [10, 10], [11, 5], [5, -1], [9.999, 0.001]], np.float64)
    assert points_in_polygon(points, square).tolist() == [True, False, False, False, False, True]
    bowl = np.array([[0, 0], [10, 0], [10, 10], [5, 2], [0, 10]], np.float64)  # concave
    assert points_in_polygon(np.array([[5.0, 5.0], [2.0, 3.0]]), bowl).tolist() == [False, True]


@pytest.mark.parametrize("ties", [False, True])
def test_accumulator_matches_motmetrics(ties):
    # With tied distances the assignment depends on the LAP solver: motmetrics uses the first of
    # lapsolver, lap, scipy that is installed. poseval's own requirements bring only scipy, so
    # we pin motmetrics + scipy (with `lap` installed the tie cases below differ in about half
    # of the trials).
    rng = np.random.default_rng(3)
    for trial in range(20):
        ours = MotAccumulator()
        theirs = mm.MOTAccumulator(auto_id=True)
        for _ in range(15):
            objects = rng.choice(8, size=rng.integers(0, 6), replace=False).tolist()
            hypotheses = rng.choice(8, size=rng.integers(0, 6), replace=False).tolist()
            distances = rng.random((len(objects), len(hypotheses)))
            if ties:
                distances = np.ceil(distances * 2) / 10  # only 0.1 and 0.2
            distances[rng.random(distances.shape) < 0.5] = np.nan
            ours.update(objects, hypotheses, distances)
            with mm.lap.set_default_solver("scipy"):
                theirs.update(objects, hypotheses, distances)
        summary = mm.metrics.create().compute(
            theirs, metrics=["num_misses", "num_switches", "num_false_positives", "num_objects", "num_detections"],
            return_dataframe=False)
        assert (ours.misses, ours.switches, ours.false_positives, ours.objects, ours.detections) == (
            summary["num_misses"], summary["num_switches"], summary["num_false_positives"],
            summary["num_objects"], summary["num_detections"]), trial
        assert ours.all_event_distance == pytest.approx(theirs.events["D"].sum(), abs=1e-9)
        events = theirs.mot_events
        match_sum = events[events.Type.isin(["MATCH", "SWITCH"])]["D"].sum()
        assert ours.match_distance == pytest.approx(match_sum, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_poseval_on_random_videos(tmp_path, seed):
    rng = np.random.default_rng(seed)
    gt_docs, pred_docs = [], []
    for v in range(3):
        frames = random_video(rng, num_frames=8, num_people=4)
        labeled = [t % 3 != 2 for t in range(8)]  # every third frame unlabeled
        for t, is_labeled in enumerate(labeled):
            if not is_labeled:
                frames[t] = []
        frames[4] = frames[4][:1] if v == 1 else frames[4]
        pred = noisy_predictions(rng, frames, noise_heads=0.15, swap_ids=0.3, empty_frame=0.1)
        x, y = frames[0][0]["joints"][13] if frames[0] else (600, 300)
        regions = {0: [np.array([[x - 30.3, y - 30.7], [x + 200.1, y - 20.9], [x + 150.2, y + 220.3]])],
                   5: [np.array([[10.5, 10.5], [400.5, 12.5], [300.5, 700.5], [5.5, 600.5]])]}
        name = f"{v + 1:06d}_mpii_test"
        gt_docs.append(document(name, frames, labeled=labeled, ignore_regions=regions))
        pred_docs.append(document(name, pred))
        write_video(tmp_path / "gt", name, gt_docs[-1])
        write_video(tmp_path / "pred", name, pred_docs[-1])
    ours = evaluate_paths(tmp_path / "gt", tmp_path / "pred")
    with mm.lap.set_default_solver("scipy"):
        reference = poseval_oracle.poseval(gt_docs, pred_docs)
    for name in ("ap", "mota", "motp", "precision", "recall"):
        np.testing.assert_allclose(getattr(ours, name), reference[name], atol=1e-9, err_msg=name)
    # the case is not trivial: misses, false positives and switches all occur
    assert 0 < ours.ap[15] < 100 and ours.mota[15] < 100
    assert min(ours.counts[k].sum() for k in ("misses", "switches", "false_positives")) > 0


@pytest.mark.parametrize("seed", [10, 11])
def test_equals_poseval_with_ties_empty_people_and_merged_files(tmp_path, seed):
    """The corners the smooth random case avoids: scores with many ties (AP then depends on the
    pooling order), whole-pixel coordinates (equal distances, assignment ties), people without
    any joint on both sides, a frame whose GT is wiped out by an ignore region, and a
    prediction file that holds a second video after the first."""
    rng = np.random.default_rng(seed)
    gt_docs, pred_docs = [], []
    for v in range(2):
        frames = random_video(rng, num_frames=7, num_people=4)
        frames[2] = []
        pred = noisy_predictions(rng, frames, noise_heads=0.2, swap_ids=0.3, empty_frame=0.1)
        for people in frames + pred:
            for person in people:
                person["joints"] = np.round(person["joints"])
                person["scores"] = np.round(person["scores"], 1)
        frames[1][0]["present"][:] = False  # a GT person with all keypoints (0, 0, 0)
        if pred[3]:
            pred[3][-1]["present"][:] = False  # a predicted person with no joint
        regions = {4: [np.array([[-10.5, -10.5], [2000.5, -10.5], [2000.5, 2000.5], [-10.5, 2000.5]])],  # all of frame 4
                   5: [np.array([[0.5, 0.5], [300.5, 0.5], [300.5, 900.5]])]}
        name = f"{v + 1:06d}_mpii_test"
        gt_docs.append(document(name, frames, ignore_regions=regions))
        pred_doc = document(name, pred)
        extra = document("000099_mpii_test", pred[:2])  # a second video in the prediction file: unread
        pred_doc["images"] += [{**image, "id": image["id"] + 5_000_000} for image in extra["images"]]
        pred_doc["annotations"] += [{**a, "id": 1000 + a["id"], "image_id": a["image_id"] + 5_000_000}
                                    for a in extra["annotations"]]
        pred_docs.append(pred_doc)
        write_video(tmp_path / "gt", name, gt_docs[-1])
        write_video(tmp_path / "pred", name, pred_docs[-1])
    ours = evaluate_paths(tmp_path / "gt", tmp_path / "pred")
    # poseval pools the videos in the order of its unsorted glob over the GT folder; with
    # tied scores that order changes AP, so the oracle gets the videos in the same order.
    order = [int(path.stem[:6]) - 1 for path in scan_json_files(tmp_path / "gt")]
    with mm.lap.set_default_solver("scipy"):
        reference = poseval_oracle.poseval([gt_docs[v] for v in order], [pred_docs[v] for v in order])
    for name in ("ap", "mota", "motp", "precision", "recall"):
        np.testing.assert_allclose(getattr(ours, name), reference[name], atol=1e-9, err_msg=name)
    assert 0 < ours.ap[15] < 100 and ours.mota[15] < 100


def test_real_sample_ground_truth_against_itself(data_dir):
    folder = data_dir / "posetrack18_mini" / "annotations" / "val"
    metrics = evaluate_paths(folder, folder)
    np.testing.assert_allclose(metrics.ap, 100.0)
    assert metrics.mota is None  # every video has one labeled frame: nothing left for MOT (poseval crashes)
    # 182 labeled joints, one of them inside an ignore region of video 003418
    assert int(metrics.counts["gt_joints"].sum()) == 181
    clean = evaluate_paths(folder, folder, clean=True)
    np.testing.assert_allclose(clean.mota, 100.0)


def test_real_sample_perturbed_matches_poseval(data_dir, tmp_path):
    folder = data_dir / "posetrack18_mini" / "annotations" / "val"
    rng = np.random.default_rng(0)
    gt_docs, pred_docs = [], []
    for path in sorted(folder.glob("*.json")):
        gt = json.loads(path.read_text())
        pred = json.loads(path.read_text())
        kept = []
        for k, annotation in enumerate(pred["annotations"]):
            if k == 1:  # one person missed
                continue
            keypoints = np.array(annotation["keypoints"], np.float64).reshape(17, 3)
            labeled = keypoints[:, 2] > 0
            keypoints[labeled, :2] += rng.normal(0, 6, size=(labeled.sum(), 2))
            annotation["keypoints"] = keypoints.ravel().tolist()
            annotation["scores"] = rng.random(17).tolist()
            kept.append(annotation)
        pred["annotations"] = kept
        (tmp_path / path.name).write_text(json.dumps(pred))
        gt_docs.append(gt)
        pred_docs.append(pred)
    ours = evaluate_paths(folder, tmp_path)
    reference = poseval_oracle.poseval(gt_docs, pred_docs)
    np.testing.assert_allclose(ours.ap, reference["ap"], atol=1e-9)
    assert ours.ap[15] < 100


def test_multi_video_file_is_read_whole_in_both_modes(data_dir, tmp_path):
    # A documented difference: poseval (eval_helpers.load_data_dir: convert_videos(data)[0]) reads
    # only the first video of a merged file; we evaluate every video, paired by name, in both modes.
    merged = data_dir / "posetrack18_mini" / "annotations" / "test_posetrack18_val.json"
    doc = json.loads(merged.read_text())
    first = {image["id"] for image in doc["images"] if "012834_mpii_test" in image["file_name"]}
    # predictions: the first video perfect, the other two videos without any person
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in first]
    pred = tmp_path / merged.name
    pred.write_text(json.dumps(doc))
    for clean in (False, True):
        metrics = evaluate_paths(merged, pred, clean=clean)
        assert metrics.num_videos == 3 and int(metrics.counts["gt_joints"].sum()) == 181
        assert metrics.ap[15] < 100  # the people of the other two videos are missed
    single = evaluate_paths(data_dir / "posetrack18_mini" / "annotations" / "val" / "012834_mpii_test.json", pred)
    np.testing.assert_allclose(single.ap, 100.0)  # a one-video GT file is paired with its namesake


def test_gt_folder_with_one_prediction_file_pairs_videos_by_name(data_dir):
    folder = data_dir / "posetrack18_mini" / "annotations" / "val"
    # A single-video prediction file must not be scored against every GT video of the folder.
    with pytest.raises(ValueError, match="no predictions for video 009473_mpii_test"):
        evaluate_paths(folder, folder / "003418_mpii_test.json")
    merged = data_dir / "posetrack18_mini" / "annotations" / "test_posetrack18_val.json"
    metrics = evaluate_paths(folder, merged)
    assert metrics.num_videos == 3
    np.testing.assert_allclose(metrics.ap, 100.0)


def test_gt_person_without_joints_is_dropped_only_where_ignore_regions_exist(tmp_path):
    # poseval keeps a 2018 GT person whose keypoints are all (0, 0, 0) (convert.py writes it with
    # an empty point list, which removeRectsWithoutPoints keeps), but removeIgnoredPointsRects
    # drops every person left without points in a frame that has ignore regions, even a region
    # far away. Frame 0 holds only such a person, and one predicted person:
    #   no region: GT people present -> per joint 0 objects, the prediction 1 FP (MOT);
    #   region:    no GT person left -> the dummy frame, 1 miss + 1 FP per joint.
    gt = scene()
    gt[0] = [make_person(5, 300, 150, HEAD_PX)]
    gt[0][0]["present"][:] = False
    pred = copy_people_frames(scene())
    pred[0] = pred[0][:1]
    far = {0: [np.array([[1000.0, 600.0], [1100.0, 600.0], [1100.0, 700.0]])]}
    plain = evaluate(tmp_path / "plain", gt, pred)
    region = evaluate(tmp_path / "region", gt, pred, ignore_regions=far)
    # frames 0 and 1 enter MOT; frame 1 is perfect (2 objects per joint)
    assert plain.counts["objects"].tolist() == [2] * 15 and plain.counts["false_positives"].tolist() == [1] * 15
    assert region.counts["objects"].tolist() == [3] * 15 and region.counts["misses"].tolist() == [1] * 15
    np.testing.assert_allclose(plain.mota, 50.0)
    np.testing.assert_allclose(region.mota, 100 * (1 - 2 / 3))
    # AP: the prediction of frame 0 is all false positives either way (it ranks with the TPs: same score)
    np.testing.assert_allclose(plain.ap, region.ap)


def test_pckh_threshold_is_inclusive(tmp_path):
    # eval_helpers.assignGTmulti: match = dist <= distThresh with dist = ||gt - pred|| / headSize,
    # headSize = 0.6 * head-box diagonal. A 6 x 8 head box gives head size 6.0 exactly, so an
    # offset of 3 px is d = 0.5 exactly: a match. 3.0001 px is not.
    gt = [[make_person(0, 200, 150, HEAD_PX)] for _ in range(3)]
    for people in gt:
        people[0]["head"] = [197.0, 146.0, 6.0, 8.0]
    for offset, expected in ((3.0, 100.0), (3.0001, 0.0)):
        pred = copy_people_frames(gt)
        for people in pred:
            people[0]["joints"][NOSE] += [offset, 0.0]
        metrics = evaluate(tmp_path / str(offset), gt, pred)
        assert metrics.ap[NOSE] == pytest.approx(expected)
        assert metrics.ap[RANKLE] == pytest.approx(100.0)


def test_ap_score_ties_follow_poseval_pooling_order(tmp_path):
    # evaluateAP.computeMetrics pools each joint's scores frame by frame (person order within a
    # frame) and sorts with np.argsort(scores)[::-1]: numpy's default, unstable sort. With ties
    # the AP depends on that order, so we must pool in the same order and sort the same way.
    gt = scene()
    pred = copy_people_frames(gt)
    for people in pred:
        for person in people:
            person["scores"][NOSE] = 0.5
    pred[1][0]["joints"][NOSE] += [HEAD_SIZE, 0.0]  # frame 1, person 0: a false positive
    labels = [1, 1, 0, 1, 1, 1]  # poseval's pooled order: (frame 0: p0, p1), (frame 1: p0, p1), ...
    expected = poseval_oracle._voc_ap([0.5] * 6, labels, 6)[0]
    metrics = evaluate(tmp_path, gt, pred)
    assert metrics.ap[NOSE] == pytest.approx(expected, abs=1e-12)
    # clean mode breaks ties by file order: TP TP FP TP TP TP -> 1/6 + 1/6 + 3 x 1/6 x 5/6
    clean = evaluate(tmp_path / "c", gt, pred, clean=True)
    assert clean.ap[NOSE] == pytest.approx(75.0)


def test_gt_head_box_is_needed_only_where_predictions_exist(tmp_path):
    # poseval reads the GT head box (x1..y2) only in frames with both GT and predictions
    # (assignGTmulti); elsewhere a missing one is harmless, in a frame with predictions it fails.
    gt = scene()
    gt_dir = tmp_path / "gt"
    doc = document("000001_mpii_test", gt)
    del doc["annotations"][2]["bbox_head"]  # frame 1, person 0
    write_video(gt_dir, "000001_mpii_test", doc)
    pred = copy_people_frames(gt)
    pred[1] = []
    write_video(tmp_path / "p1", "000001_mpii_test", document("000001_mpii_test", pred))
    metrics = evaluate_paths(gt_dir, tmp_path / "p1")
    np.testing.assert_allclose(metrics.ap, 100 * 4 / 6)
    write_video(tmp_path / "p2", "000001_mpii_test", document("000001_mpii_test", copy_people_frames(gt)))
    with pytest.raises(ValueError, match=r"000001_mpii_test\.json.*without a head box"):
        evaluate_paths(gt_dir, tmp_path / "p2")


def test_no_evaluated_frame_gives_poseval_nan_mot(tmp_path):
    # Nothing annotated: poseval has no sequence to evaluate; computeMetrics then gives MOTA,
    # precision and recall NaN (0 objects), MOTP 0 (no detection), and every AP 0.
    gt = [[] for _ in range(3)]
    metrics = evaluate(tmp_path, gt, scene())
    np.testing.assert_allclose(metrics.ap, 0.0)
    assert np.isnan(metrics.mota).all() and np.isnan(metrics.precision).all() and np.isnan(metrics.recall).all()
    np.testing.assert_allclose(metrics.motp, 0.0)


def test_frame_count_mismatch_is_an_error(tmp_path):
    gt = scene()
    with pytest.raises(ValueError, match="prediction frames"):
        evaluate(tmp_path, gt, gt[:2])


def test_clean_mode_aligns_by_image_id(tmp_path):
    gt = scene()
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    write_video(gt_dir, "v", document("000001_mpii_test", gt))
    doc = document("000001_mpii_test", copy_people_frames(gt))
    doc["images"] = doc["images"][::-1]  # same frames, reversed order
    write_video(pred_dir, "v", doc)
    np.testing.assert_allclose(evaluate_paths(gt_dir, pred_dir, clean=True).mota, 100.0)


def test_cli_prints_tables_and_writes_json(tmp_path, capsys):
    import main

    gt = scene()
    pred = copy_people_frames(gt)
    del pred[1][1]
    write_video(tmp_path / "gt", "v", document("000001_mpii_test", gt))
    write_video(tmp_path / "pred", "v", document("000001_mpii_test", pred))
    out = tmp_path / "metrics.json"
    status = main.main(["posetrack", "eval", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                        "--json", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "& Head & Shou & Elb  & Wri  & Hip  & Knee & Ankl & Total\\\\" in printed
    assert "& 83.3 & 83.3 & 83.3 & 83.3 & 83.3 & 83.3 & 83.3 & 83.3 \\\\" in printed
    result = json.loads(out.read_text())
    assert set(result) >= {"ap", "mota", "motp", "precision", "recall"}
    assert list(result["ap"]) == list(posetrack.GROUP_NAMES)
    assert result["ap"]["total"] == pytest.approx(100 * 5 / 6, abs=1e-12)
    assert result["mota"]["knee"] == pytest.approx(75.0)
    assert main.main(["posetrack", "eval", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--clean"]) == 0
    assert "clean mode" in capsys.readouterr().out


def test_cli_unwritable_metrics_file_is_a_clear_error(tmp_path, caplog):
    import main

    gt = scene()
    write_video(tmp_path / "gt", "v", document("000001_mpii_test", gt))
    (tmp_path / "taken").write_text("a file where the folder should be")
    out = tmp_path / "taken" / "metrics.json"
    status = main.main(["posetrack", "eval", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "gt"),
                        "--json", str(out)])
    assert status == 2 and f"cannot write the metrics to {out}" in caplog.text
