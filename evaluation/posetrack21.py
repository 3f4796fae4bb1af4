"""PoseTrack21 scoring: keypoint HOTA and the pose-estimation mAP, exactly as the official kit.

The kit is anDoer/PoseTrack21 `eval/posetrack21` (TrackEval-based): pose
tracking is its `HOTAeypoints` metric (`scripts/run_posetrack_challenge.py`),
pose estimation its `PosemAP` (`scripts/run_pose_estimation.py`), both over
its `PoseTrack` dataset reader. Every rule it applies is reproduced in the
default mode; docs/POSETRACK21.md lists them. In short:

* only frames whose GT image has `is_labeled` count; joints inside an ignore
  region are removed (GT and predictions), and a person with every joint inside
  one, or (in frames that list an ignore region) with no joint left, is removed;
* per frame and joint a keypoint pair's similarity is
  max(0, 1 - d / 0.5001), d the distance over the GT head size; the Hungarian
  assignment maximises the summed similarity, separately for each of the 15
  joints; a match counts at threshold alpha (0.05 ... 0.95) when its similarity
  is >= alpha; DetA, AssA (per (GT id, predicted id, joint) match counts),
  LocA, FragA (runs of the same pairing) follow TrackEval's HOTA per joint;
* a labeled frame without predicted people adds the whole sequence's GT joints
  to the misses (the kit's rule; `--clean` adds the frame's own);
* sequences are combined by summing counts and weighting AssA, AssRe, AssPr,
  FragA and LocA by true positives, the "Total" column included (a per-sequence
  mean over joints weighted by its total TP, not a mean of the joint columns);
  reported values are 100 x the mean over the 19 thresholds;
* mAP: each prediction goes to the GT with its best PCKh (ties: first), each
  GT keeps its best prediction; VOC all-point AP per joint over numpy's default
  (unstable) descending sort, pooled over sequences in sorted-name order. Tied
  scores are ranked as numpy 1.x ranks them (`legacy_sort`), since the kit
  runs only there.

Where the kit crashes we score: a labeled frame left without GT people (the
kit fails in its PCKh step) scores its predicted joints as false positives; a
prediction file whose `images` differ from the GT's is aligned by image id.
`clean=True` also fixes the kit's surprising rules (`CLEAN_CHANGES`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from evaluation.legacy_sort import argsort_numpy1, tie_order_matters
from evaluation.pose_scoring import average_precision, points_in_polygon
from evaluation.posetrack21_files import (
    JOINT_NAMES,
    NUM_JOINTS,
    GroundTruthSequence,
    People,
    PoseTrack21FormatError,
    PredictionSequence,
    read_ground_truth,
    read_predictions,
)

logger = logging.getLogger(__name__)

# HOTA thresholds, as the kit builds them (np.arange keeps its rounding: 0.15000000000000002, ...).
ALPHAS = np.arange(0.05, 0.99, 0.05)
_THRESHOLDS = ALPHAS - np.finfo(float).eps
NUM_ALPHAS = len(ALPHAS)
# similarity = max(0, 1 + SLOPE x normalised distance): 0 just beyond PCKh's 0.5 head sizes.
SIMILARITY_SLOPE = -1 / 0.5001
PCKH_THRESHOLD = 0.5
COLUMNS: tuple[str, ...] = (*JOINT_NAMES, "Total")

# The kit's result fields, in the order its summary table prints them.
COUNT_FIELDS = ("HOTA_TP(0)", "HOTA_FN(0)", "HOTA_FP(0)", "HOTA_TP", "HOTA_FN", "HOTA_FP")
PERCENT_FIELDS = ("AssRe", "AssPr", "AssA", "FragA", "LocA", "DetRe", "DetPr", "DetA", "HOTA", "RHOTA", "FA-HOTA",
                  "FA-RHOTA", "HOTA(0)", "LocA(0)", "HOTALocA(0)")
_ARRAY_COUNTS = ("HOTA_TP", "HOTA_FN", "HOTA_FP")
_WEIGHTED = ("AssRe", "AssPr", "AssA", "FragA")

# mAP groups, as the kit's PosemAP.get_cum_vals (joint indices in its averaging order).
AP_GROUPS: dict[str, tuple[int, ...]] = {
    "Head": (2, 1, 0), "Shou": (3, 4), "Elb": (5, 6), "Wri": (7, 8), "Hip": (9, 10), "Knee": (11, 12),
    "Ankl": (14, 13),
}
AP_NAMES = ("map", "precision", "recall")

CLEAN_CHANGES = (
    "clean mode: the official kit's surprising rules fixed: a labeled frame without predicted people adds its own GT "
    "joints to the misses (the kit adds the whole sequence's); AP ties are broken by file order (stable sort); "
    "scores are never truncated to integers (the kit truncates them in frames whose keypoints are all JSON integers); "
    "numbers are NOT comparable to published PoseTrack21 results"
)


# ---------------------------------------------------------------------------- per-frame geometry


@dataclass(frozen=True)
class _Frame:
    """One scored frame: GT and predicted people after the kit's ignore-region pass."""

    image_id: int
    gt: People
    pred: People


def _ignore_pass(people: People, polygons: Sequence[np.ndarray]) -> People:
    """The kit's ignore-region step for one frame that lists ignore regions.

    Joints strictly inside a polygon become (0, 0) with score 0; a person with
    all 15 joints inside, or with no joint left that has x > 0 or y > 0, is removed.
    """
    if len(people) == 0:
        return people
    points = people.keypoints.reshape(-1, 2)
    inside = np.zeros(len(points), bool)
    for polygon in polygons:
        inside |= points_in_polygon(points, polygon)
    inside = inside.reshape(len(people), NUM_JOINTS)
    keypoints = np.where(inside[..., None], 0.0, people.keypoints)
    scores = np.where(inside, 0.0, people.scores)
    gone = ((keypoints[..., 0] <= 0) & (keypoints[..., 1] <= 0)).all(axis=1)
    keep = ~inside.all(axis=1) & ~gone
    cleaned = People(keypoints, scores, people.track_ids, people.head_sizes)
    return cleaned.subset(keep) if not keep.all() else cleaned


def _distances(gt: People, pred: People) -> np.ndarray:
    """(G, D, 15) distance over the GT head size; inf where either joint is absent (or the head box is empty)."""
    difference = gt.keypoints[:, None] - pred.keypoints[None]
    norm = np.sqrt(difference[..., 0] ** 2 + difference[..., 1] ** 2)
    heads = gt.head_sizes[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(heads > 0, norm / np.where(heads > 0, heads, 1.0), np.inf)
    both = gt.present[:, None] & pred.present[None]
    return np.where(both, distance, np.inf)


def _assign(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows, cols of the maximum-similarity assignment of one joint, keeping only pairs with similarity > 0.

    The kit solves every (frame, joint) with scipy's linear_sum_assignment; pairs
    of similarity 0 never count, so when the positive entries already lie in
    distinct rows and columns they are the answer, and otherwise the full
    matrix goes to the same solver (same input, same tie-breaking).
    """
    positive = similarity > 0
    if not positive.any():
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    if positive.sum(axis=0).max() <= 1 and positive.sum(axis=1).max() <= 1:
        return np.nonzero(positive)
    rows, cols = linear_sum_assignment(-similarity)
    keep = similarity[rows, cols] > 0
    return rows[keep], cols[keep]


# ---------------------------------------------------------------------------- HOTA of one sequence


def _relabel(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Ids -> 0..n-1 in sorted order, as the kit's relabelling."""
    if not ids_per_frame:
        return [], 0
    unique = np.unique(np.concatenate(ids_per_frame))
    return [np.searchsorted(unique, ids) for ids in ids_per_frame], len(unique)


def _hota_sequence(frames: list[_Frame], clean: bool) -> dict[str, np.ndarray]:
    """The kit's per-sequence HOTA fields before averaging: (19, 16) arrays (15 joints + Total)."""
    res = {name: np.zeros((NUM_ALPHAS, NUM_JOINTS)) for name in (*_ARRAY_COUNTS, *_WEIGHTED, "LocA")}
    gt_ids, num_gt_ids = _relabel([f.gt.track_ids for f in frames])
    pred_ids, num_pred_ids = _relabel([f.pred.track_ids for f in frames])
    gt_present = [f.gt.present for f in frames]
    pred_present = [f.pred.present for f in frames]
    num_gt_joints = sum((p.sum(axis=0) for p in gt_present), np.zeros(NUM_JOINTS, np.int64))
    num_pred_joints = sum((p.sum(axis=0) for p in pred_present), np.zeros(NUM_JOINTS, np.int64))
    num_pred_people = sum(len(f.pred) for f in frames)
    if num_pred_people == 0 or sum(len(f.gt) for f in frames) == 0:
        # the kit's early returns: everything a miss (or a false positive), LocA 1
        res["HOTA_FN" if num_pred_people == 0 else "HOTA_FP"][:] = (
            num_gt_joints if num_pred_people == 0 else num_pred_joints)
        res["LocA"][:] = 1.0
        return _append_totals(res)

    gt_count = np.zeros((num_gt_ids, NUM_JOINTS))
    pred_count = np.zeros((num_pred_ids, NUM_JOINTS))
    pairs_t, pairs_j, pairs_g, pairs_d, pairs_s = [], [], [], [], []
    for t, frame in enumerate(frames):
        np.add.at(gt_count, gt_ids[t], gt_present[t])
        np.add.at(pred_count, pred_ids[t], pred_present[t])
        if len(frame.gt) == 0:
            # the kit crashes here (see _frames_of); the predicted joints are false positives
            res["HOTA_FP"] += pred_present[t].sum(axis=0)
            continue
        if len(frame.pred) == 0:
            res["HOTA_FN"] += gt_present[t].sum(axis=0) if clean else num_gt_joints
            continue
        res["HOTA_FN"] += gt_present[t].sum(axis=0)
        res["HOTA_FP"] += pred_present[t].sum(axis=0)
        similarity = np.maximum(SIMILARITY_SLOPE * _distances(frame.gt, frame.pred) + 1, 0)
        for j in range(NUM_JOINTS):
            rows, cols = _assign(similarity[:, :, j])
            if len(rows):
                pairs_t.append(np.full(len(rows), t))
                pairs_j.append(np.full(len(rows), j))
                pairs_g.append(gt_ids[t][rows])
                pairs_d.append(pred_ids[t][cols])
                pairs_s.append(similarity[rows, cols, j])
    if pairs_t:
        _accumulate_matches(res, np.concatenate(pairs_t), np.concatenate(pairs_j), np.concatenate(pairs_g),
                            np.concatenate(pairs_d), np.concatenate(pairs_s), gt_count, pred_count, num_pred_ids)
    res["LocA"] = np.maximum(1e-10, res["LocA"]) / np.maximum(1e-10, res["HOTA_TP"])
    return _append_totals(res)


def _accumulate_matches(res: dict[str, np.ndarray], t: np.ndarray, j: np.ndarray, g: np.ndarray, d: np.ndarray,
                        s: np.ndarray, gt_count: np.ndarray, pred_count: np.ndarray, num_pred_ids: int) -> None:
    """TP, LocA and the association sums from every positive-similarity match of a sequence.

    A match with similarity s counts at the first `levels` thresholds; counts per
    threshold are reverse cumulative sums over levels.
    """
    levels = np.searchsorted(_THRESHOLDS, s, side="right")  # number of thresholds <= s
    width = NUM_ALPHAS + 1

    def per_threshold(index: np.ndarray, size: int, weights: np.ndarray | None = None) -> np.ndarray:
        """(size, 19): sum of weights over matches of each index that pass each threshold."""
        histogram = np.bincount(index * width + levels, weights, minlength=size * width).reshape(size, width)
        return np.cumsum(histogram[:, ::-1], axis=1)[:, ::-1][:, 1:]

    true_positives = per_threshold(j, NUM_JOINTS).T
    res["HOTA_TP"] += true_positives
    res["HOTA_FN"] -= true_positives  # the frames' GT and predicted joints were added before
    res["HOTA_FP"] -= true_positives
    res["LocA"] += per_threshold(j, NUM_JOINTS, s).T
    # match counts per (GT id, predicted id, joint) and threshold
    keys, key_of = np.unique((g * num_pred_ids + d) * NUM_JOINTS + j, return_inverse=True)
    matches = per_threshold(key_of, len(keys))  # (K, 19)
    key_g, key_d, key_j = keys // NUM_JOINTS // num_pred_ids, keys // NUM_JOINTS % num_pred_ids, keys % NUM_JOINTS
    gt_total = gt_count[key_g, key_j][:, None]
    pred_total = pred_count[key_d, key_j][:, None]
    union = np.maximum(1, gt_total + pred_total - matches)
    tp = np.maximum(1, res["HOTA_TP"])

    def joint_sum(values: np.ndarray) -> np.ndarray:
        out = np.zeros((NUM_JOINTS, NUM_ALPHAS))
        np.add.at(out, key_j, values)
        return out.T

    res["AssA"] += joint_sum(matches * (matches / union)) / tp
    res["AssRe"] += joint_sum(matches * (matches / np.maximum(1, gt_total))) / tp
    res["AssPr"] += joint_sum(matches * (matches / np.maximum(1, pred_total))) / tp
    # FragA: runs of the same (GT id, predicted id) in time, per joint; a run ends when the GT id matches another id
    order = np.lexsort((t, g, j))
    j_sorted, g_sorted, d_sorted, level_sorted, key_sorted = j[order], g[order], d[order], levels[order], key_of[order]
    fragments = np.zeros((NUM_JOINTS, NUM_ALPHAS))
    for a in range(NUM_ALPHAS):
        counted = level_sorted > a
        if not counted.any():
            break
        rj, rg, rd, rkey = j_sorted[counted], g_sorted[counted], d_sorted[counted], key_sorted[counted]
        starts = np.ones(len(rj), bool)
        starts[1:] = (rj[1:] != rj[:-1]) | (rg[1:] != rg[:-1]) | (rd[1:] != rd[:-1])
        run_of = np.cumsum(starts) - 1
        lengths = np.bincount(run_of).astype(np.float64)
        run_key = rkey[starts]
        contribution = lengths * (lengths / union[run_key, a])
        fragments[:, a] = np.bincount(rj[starts], contribution, minlength=NUM_JOINTS)
    res["FragA"] += fragments.T / tp


def _append_totals(res: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The kit's per-sequence Total column: sum of counts, mean of the rates over joints."""
    out = {}
    for name, values in res.items():
        total = values.sum(axis=1, keepdims=True) if name in _ARRAY_COUNTS else values.mean(axis=1, keepdims=True)
        out[name] = np.append(values, total, axis=1)
    return out


def _combine(per_sequence: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The kit's combine_sequences and final fields: (19, 16) arrays of every field."""
    if not per_sequence:
        per_sequence = [_append_totals({name: np.zeros((NUM_ALPHAS, NUM_JOINTS))
                                        for name in (*_ARRAY_COUNTS, *_WEIGHTED, "LocA")})]
    res = {name: sum(r[name] for r in per_sequence) for name in _ARRAY_COUNTS}
    tp = res["HOTA_TP"]
    for name in _WEIGHTED:
        res[name] = sum(r[name] * r["HOTA_TP"] for r in per_sequence) / np.maximum(1.0, tp)
    res["LocA"] = np.maximum(1e-10, sum(r["LocA"] * r["HOTA_TP"] for r in per_sequence)) / np.maximum(1e-10, tp)
    fn, fp = res["HOTA_FN"], res["HOTA_FP"]
    res["DetRe"] = tp / np.maximum(1, tp + fn)
    res["DetPr"] = tp / np.maximum(1, tp + fp)
    res["DetA"] = tp / np.maximum(1, tp + fn + fp)
    res["HOTA"] = np.sqrt(res["DetA"] * res["AssA"])
    res["RHOTA"] = np.sqrt(res["DetRe"] * res["AssA"])
    res["FA-HOTA"] = np.sqrt(res["DetA"] * np.sqrt(res["AssA"] * res["FragA"]))
    res["FA-RHOTA"] = np.sqrt(res["DetRe"] * np.sqrt(res["AssA"] * res["FragA"]))
    return res


def hota_summary(combined: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(percent fields, count fields), each name -> (16,) as the kit's summary reports them.

    Threshold-array fields are 100 x their mean over the 19 thresholds; the (0)
    fields are the first threshold's value; counts are means over thresholds.
    """
    percent = {}
    for name in PERCENT_FIELDS:
        if name == "HOTA(0)":
            percent[name] = 100 * combined["HOTA"][0]
        elif name == "LocA(0)":
            percent[name] = 100 * combined["LocA"][0]
        elif name == "HOTALocA(0)":
            percent[name] = 100 * (combined["HOTA"][0] * combined["LocA"][0])
        else:
            percent[name] = 100 * combined[name].mean(axis=0)
    counts = {f"{name}(0)": combined[name][0] for name in _ARRAY_COUNTS}
    counts.update({name: combined[name].mean(axis=0) for name in _ARRAY_COUNTS})
    return percent, {name: counts[name] for name in COUNT_FIELDS}


# ---------------------------------------------------------------------------- mAP


@dataclass
class _ApPool:
    """Scores and labels of every predicted joint, pooled in the kit's order (sequence, frame, person)."""

    scores: list[np.ndarray]
    labels: list[np.ndarray]
    present: list[np.ndarray]
    gt_joints: np.ndarray

    def add_frame(self, frame: _Frame) -> None:
        gt, pred = frame.gt, frame.pred
        self.gt_joints += gt.present.sum(axis=0)
        if len(pred) == 0:
            return
        labels = np.zeros((len(pred), NUM_JOINTS), bool)
        if len(gt):
            distances = _distances(gt, pred)
            matched = distances <= PCKH_THRESHOLD  # (G, D, 15)
            annotated = gt.present.sum(axis=1)
            hits = matched.sum(axis=2).astype(np.float64)
            pck = np.where(annotated[:, None] > 0, hits / np.maximum(annotated, 1)[:, None], hits)  # (G, D)
            best_gt = np.argmax(pck, axis=0)  # per prediction, first on ties
            kept = np.zeros_like(pck)
            columns = np.arange(len(pred))
            kept[best_gt, columns] = pck[best_gt, columns]
            best_pred = np.argmax(kept, axis=1)  # per GT
            for g in np.flatnonzero(kept.max(axis=1) > 0):
                labels[best_pred[g]] = matched[g, best_pred[g]]
        self.scores.append(pred.scores)
        self.labels.append(labels)
        self.present.append(pred.present)

    def table(self, stable: bool) -> dict[str, dict[str, float]]:
        """{"map"|"precision"|"recall": {group: percent}} as the kit's PosemAP."""
        values = np.zeros((3, NUM_JOINTS + 1))
        scores = np.concatenate(self.scores) if self.scores else np.zeros((0, NUM_JOINTS))
        labels = np.concatenate(self.labels) if self.labels else np.zeros((0, NUM_JOINTS), bool)
        present = np.concatenate(self.present) if self.present else np.zeros((0, NUM_JOINTS), bool)
        for j in range(NUM_JOINTS):
            mask = present[:, j]
            joint_scores, joint_labels = scores[mask, j], labels[mask, j].astype(np.int8)
            order = None
            if not stable and tie_order_matters(joint_scores, joint_labels):
                # the kit ran on numpy < 1.24, whose unstable sort leaves ties in another order than numpy 2's
                order = argsort_numpy1(joint_scores)[::-1]
            values[:, j] = average_precision(joint_scores, joint_labels, float(max(self.gt_joints[j], 1)),
                                             stable=stable, order=order)
        values[:, NUM_JOINTS] = values[:, :NUM_JOINTS].mean(axis=1)
        table = {}
        for name, row in zip(AP_NAMES, values):
            entry = {group: float(row[list(ids)].mean()) for group, ids in AP_GROUPS.items()}
            entry["Total"] = float(row[NUM_JOINTS])
            table[name] = entry
        return table


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PoseTrack21Metrics:
    """PoseTrack21 results in the kit's names.

    Attributes:
        mode: "compatible" (the kit's numbers) or "clean".
        hota: field -> (16,) percent over COLUMNS (15 joints, "Total"); None
            when the predictions carry no track ids.
        counts: HOTA_TP / FN / FP (means over thresholds) and their (0) values, (16,) each; None with hota.
        ap: "map" / "precision" / "recall" -> group (Head ... Ankl, Total) -> percent.
        num_sequences, num_frames: sequences read and labeled frames scored.
    """

    mode: str
    hota: dict[str, np.ndarray] | None
    counts: dict[str, np.ndarray] | None
    ap: dict[str, dict[str, float]]
    num_sequences: int
    num_frames: int

    def to_dict(self) -> dict:
        """JSON-ready, percent at full precision; NaN (never produced by the kit's rules) as None."""

        def number(value: float):
            value = float(value)
            return value if math.isfinite(value) else None

        def columns(values: np.ndarray) -> dict[str, float]:
            return {name: number(v) for name, v in zip(COLUMNS, values)}

        return {
            "benchmark": "posetrack21",
            "mode": self.mode,
            "hota": None if self.hota is None else {name: columns(v) for name, v in self.hota.items()},
            "counts": None if self.counts is None else {name: columns(v) for name, v in self.counts.items()},
            "ap": {name: {k: number(v) for k, v in row.items()} for name, row in self.ap.items()},
            "num_sequences": self.num_sequences,
            "num_frames": self.num_frames,
        }

    def format_tables(self, tracker: str = "") -> str:
        """The kit's printed summaries: HOTAeypoints (values "%1.5g", counts truncated) and PosemAP ("%.1f")."""
        lines = []
        if self.hota is not None:
            lines.append(_kit_row(["HOTAeypoints->Summary: " + tracker + ":"]))
            lines.append(_kit_row(["\t", *COLUMNS]))
            lines.append(_kit_row(["\tMetric"]))
            for name in COUNT_FIELDS:
                lines.append(_kit_row([f"\t{name}", *("%d" % int(v) for v in self.counts[name])]))
            for name in PERCENT_FIELDS:
                lines.append(_kit_row([f"\t{name}", *("{0:1.5g}".format(v) for v in self.hota[name])]))
        else:
            lines.append("HOTAeypoints: not evaluated (predictions without track_id; see the log)")
        lines.append("")
        for name in AP_NAMES:  # PosemAP's table without its per-sequence rows
            lines.append(_kit_row([f"[{name}]", *self.ap[name]], space=15))
            lines.append(_kit_row(["Summary " + tracker + ":"]))
            lines.append(_kit_row(["", *("%.1f" % v for v in self.ap[name].values())], space=15))
            lines.append("")
        return "\n".join(lines).rstrip()


def _kit_row(cells: Sequence[str], space: int = 10) -> str:
    """The kit's _row_print: first cell padded to 25, the others to `space`."""
    return ("%-25s" % cells[0] + "".join(f"%-{space}s" % str(c) for c in cells[1:])).rstrip()


# ---------------------------------------------------------------------------- evaluation


def _frames_of(gt: GroundTruthSequence, pred: PredictionSequence, clean: bool) -> list[_Frame]:
    """The labeled frames of one sequence after the kit's ignore-region pass, with id checks."""
    frames = []
    kit_crashes = []
    for frame in gt.frames:
        if not frame.is_labeled:
            continue
        people = pred.frames.get(frame.image_id) or People.empty(False)
        if not clean and frame.image_id in pred.integer_keypoints:
            # the kit copies the scores into an integer keypoint array
            people = People(people.keypoints, np.trunc(people.scores), people.track_ids)
        gt_people = frame.people
        if frame.has_ignore_entry:
            gt_people = _ignore_pass(gt_people, frame.ignore_regions)
            people = _ignore_pass(people, frame.ignore_regions)
        for who, ids, source in (("GT", gt_people.track_ids, gt.source), ("predicted", people.track_ids, pred.source)):
            if ids is not None and len(np.unique(ids)) != len(ids):
                values, counts = np.unique(ids, return_counts=True)
                raise PoseTrack21FormatError(
                    f"{source}: image {frame.image_id}: {who} track_id {values[counts > 1].tolist()} used for "
                    "more than one person (the kit refuses this too)")
        if len(gt_people) == 0:
            kit_crashes.append(frame.image_id)
        frames.append(_Frame(frame.image_id, gt_people, people))
    if kit_crashes:
        logger.warning("%s: %d labeled frames have no GT person outside the ignore regions (image ids %s%s); the "
                       "official kit crashes on them; their predicted joints are scored as false positives",
                       gt.source, len(kit_crashes), kit_crashes[:5], " ..." if len(kit_crashes) > 5 else "")
    return frames


def _check_alignment(gt: GroundTruthSequence, pred: PredictionSequence) -> None:
    """Log where the kit would stop on a prediction file, and predictions no GT image has."""
    gt_ids = [f.image_id for f in gt.frames]
    known = set(gt_ids)
    unknown = [image_id for image_id in pred.frames if image_id not in known]
    if unknown:
        logger.warning("%s: predictions for %d image ids that are not in %s (e.g. %s); ignored",
                       pred.source, len(unknown), gt.source, unknown[:5])
    listed = pred.image_ids
    aligned = listed is not None and len(listed) >= len(gt_ids) and all(
        listed[k] == f.image_id for k, f in enumerate(gt.frames) if f.is_labeled)
    if not aligned:
        logger.info("%s: its 'images' list differs from %s's (the official kit stops on such a file); "
                    "scored by image id", pred.source, gt.source)


def evaluate_sequences(pairs: Iterable[tuple[GroundTruthSequence, PredictionSequence]], *,
                       clean: bool = False, tracking: bool = True) -> PoseTrack21Metrics:
    """Score (GT, prediction) sequence pairs, in the order given (the kit's: sorted file names).

    `tracking=False` skips HOTA (mAP only), as does a prediction file without track ids.
    """
    per_sequence = []
    pool = _ApPool([], [], [], np.zeros(NUM_JOINTS, np.int64))
    num_sequences = num_frames = 0
    for gt, pred in pairs:
        _check_alignment(gt, pred)
        frames = _frames_of(gt, pred, clean)
        num_sequences += 1
        num_frames += len(frames)
        for frame in frames:
            pool.add_frame(frame)
        if tracking and not pred.has_track_ids:
            logger.warning("%s: predictions without an integer track_id; HOTA is not evaluated (mAP only)", pred.source)
            tracking = False
        if tracking:
            per_sequence.append(_hota_sequence(frames, clean))
    hota = counts = None
    if tracking:
        hota, counts = hota_summary(_combine(per_sequence))
    return PoseTrack21Metrics("clean" if clean else "compatible", hota, counts, pool.table(stable=clean),
                              num_sequences, num_frames)


def sequence_files(gt: str | os.PathLike, pred: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(GT file, prediction file) pairs in sorted-name order.

    `gt` is a folder of per-sequence JSON files (or one file); `pred` a folder
    holding a file of the same name for each (directly, or in a `sequences`
    sub-folder, the kit's one-tracker layout), or one file for a one-file GT.
    """
    gt, pred = Path(gt), Path(pred)
    if not gt.exists():
        raise FileNotFoundError(f"GT path not found: {gt}")
    if not pred.exists():
        raise FileNotFoundError(f"prediction path not found: {pred}")
    gt_files = sorted(gt.glob("*.json"), key=lambda p: p.name) if gt.is_dir() else [gt]
    if not gt_files:
        raise FileNotFoundError(f"no *.json GT files in {gt}")
    if not pred.is_dir():
        if len(gt_files) > 1:
            raise ValueError(f"{pred} is one file but {gt} holds {len(gt_files)} sequences: give a folder with one "
                             "prediction file per GT file name")
        return [(gt_files[0], pred)]
    folder = pred
    if not (pred / gt_files[0].name).is_file() and (pred / "sequences" / gt_files[0].name).is_file():
        folder = pred / "sequences"
    missing = [f.name for f in gt_files if not (folder / f.name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: no prediction file for {len(missing)} of the {len(gt_files)} GT sequences "
                                f"(e.g. {missing[:3]}); each GT file {gt}/NAME.json needs {folder}/NAME.json")
    return [(f, folder / f.name) for f in gt_files]


def evaluate_paths(gt: str | os.PathLike, pred: str | os.PathLike, *, clean: bool = False,
                   tracking: bool = True) -> PoseTrack21Metrics:
    """Read every GT sequence and its predictions (see `sequence_files`) one at a time and score them."""
    files = sequence_files(gt, pred)
    pairs = ((read_ground_truth(g), read_predictions(p)) for g, p in files)
    return evaluate_sequences(pairs, clean=clean, tracking=tracking)
