"""PoseTrack evaluation: per-joint AP and CLEAR-MOT metrics, exactly as poseval.

Two modes:

* compatible (default): the numbers of the official evaluator (poseval @
  4258a15 with motmetrics >= 1.2), quirks included, so that published PoseTrack
  2017/2018 numbers can be reproduced and compared:
  frames aligned by position; frames whose GT lists nobody are dropped; GT and
  predicted joints inside ignore regions are removed; PCKh@0.5 with head size
  0.6 x head-box diagonal; greedy per-frame person assignment for AP; VOC
  all-point AP over numpy's default (unstable) descending sort; MOT per joint
  with motmetrics' update rule, the last evaluated frame of every video left
  out, a frame without predictions (or without GT people left) entered as one
  dummy miss and one dummy false positive per joint, and MOTP over every
  distance motmetrics records (RAW and TRANSFER/ASCEND/MIGRATE events too).
* clean (`clean=True`): the same metrics with the quirks fixed: frames aligned
  by image id (2018) or image name (2017) and selected by `is_labeled` where the
  GT has the flag; the last frame kept; a frame without predictions gives real
  misses and a frame without GT people real false positives; MOTP from MATCH
  and SWITCH distances only; AP ties broken by file order (stable sort).

A file holding several videos is read whole in both modes, each GT video
paired with the prediction video of the same name. This is a documented
difference: poseval keeps only the first video of each file
(`convert_videos(data)[0]`) and says nothing; we log it. The MOT step is our own port of motmetrics 1.4.0's
`MOTAccumulator.update` (continuity, then max-cardinality min-cost assignment,
SWITCH / MATCH, MISS, FP), counting events instead of building pandas tables;
`tests/test_posetrack_eval.py` checks it against motmetrics itself.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.posetrack_format import (
    NUM_JOINTS,
    POSEVAL_JOINT_NAMES,
    PoseTrackFormatError,
    PoseTrackFrame,
    PoseTrackVideo,
    read_posetrack_file,
    scan_json_files,
)
from evaluation.pose_scoring import average_precision, points_in_polygon

logger = logging.getLogger(__name__)

# PCKh threshold: a joint matches when its distance is <= 0.5 head sizes.
DISTANCE_THRESHOLD = 0.5
# head size = HEAD_SIZE_FACTOR x head-box diagonal (poseval's getHeadSize).
HEAD_SIZE_FACTOR = 0.6

# Table groups, as poseval's getCum: poseval joint ids averaged per column.
JOINT_GROUPS: dict[str, tuple[int, ...]] = {
    "head": (14, 12, 13),
    "shoulder": (8, 9),
    "elbow": (7, 10),
    "wrist": (6, 11),
    "hip": (2, 3),
    "knee": (1, 4),
    "ankle": (0, 5),
}
GROUP_NAMES: tuple[str, ...] = (*JOINT_GROUPS, "total")


# ---------------------------------------------------------------------------- geometry


def _remove_ignored(keypoints: np.ndarray, present: np.ndarray, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """present with joints inside any polygon cleared; (N, 15) bool."""
    if not polygons or not present.any():
        return present
    flat = keypoints.reshape(-1, 2)
    inside = np.zeros(len(flat), bool)
    candidates = present.ravel()
    for polygon in polygons:
        inside[candidates] |= points_in_polygon(flat[candidates], polygon)
    return present & ~inside.reshape(present.shape)


# ---------------------------------------------------------------------------- MOT accumulation


def _assign(distances: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row, col) of motmetrics' assignment: most pairs first, least total distance second.

    NaN marks forbidden pairs. motmetrics replaces them by a constant large
    enough that one forbidden pair costs more than any set of allowed ones,
    solves, and drops the forbidden pairs; so do we, skipping the solver when
    no row or column has a choice. The solver is scipy's: motmetrics takes the
    first installed of lapsolver, lap and scipy, and poseval's requirements
    bring only scipy. Where several assignments tie exactly (equal distances),
    lap picks differently about half the time, so poseval's numbers themselves
    then depend on whether `lap` is installed next to it.
    """
    finite = np.isfinite(distances)
    if not finite.any():
        return []
    if finite.sum(axis=0).max() <= 1 and finite.sum(axis=1).max() <= 1:
        rows, cols = np.nonzero(finite)
        return list(zip(rows.tolist(), cols.tolist()))
    valid = distances[finite]
    large = 2 * min(distances.shape) * (np.abs(valid).max() + 1) + 1
    rows, cols = linear_sum_assignment(np.where(finite, distances, large))
    return [(i, j) for i, j in zip(rows.tolist(), cols.tolist()) if finite[i, j]]


class MotAccumulator:
    """CLEAR-MOT events of one video for one joint, as motmetrics 1.4.0 counts them.

    A port of `motmetrics.MOTAccumulator.update` that keeps counts and distance
    sums instead of an event table. `update` takes the objects (GT ids), the
    hypotheses (predicted ids) and an (objects, hypotheses) distance matrix with
    NaN for pairs that may not be matched.
    """

    def __init__(self) -> None:
        self._pairing: dict = {}  # object -> hypothesis of its latest match (motmetrics `m`)
        self._reverse: dict = {}  # hypothesis -> object, assignment step only (`res_m`)
        self._matched_objects: set = set()  # objects matched at least once (`last_match`)
        self._seen_hypotheses: set = set()  # hypotheses matched at least once (`hypHistory`)
        self.frames = 0
        self.matches = 0
        self.switches = 0
        self.misses = 0
        self.false_positives = 0
        self.match_distance = 0.0  # sum of D over MATCH and SWITCH events
        self.raw_distance = 0.0  # sum of every finite distance given (motmetrics RAW events)
        self.extra_distance = 0.0  # sum of D over TRANSFER, ASCEND and MIGRATE events

    @property
    def objects(self) -> int:
        return self.matches + self.switches + self.misses

    @property
    def detections(self) -> int:
        return self.matches + self.switches

    @property
    def all_event_distance(self) -> float:
        """What poseval sums as `accumulator.events['D'].sum()`."""
        return self.raw_distance + self.match_distance + self.extra_distance

    def update(self, object_ids: Sequence[int], hypothesis_ids: Sequence[int], distances: np.ndarray) -> None:
        """One frame. distances: (objects, hypotheses) float64, NaN = may not be paired.

        Hypothesis ids must be unique within the frame (poseval enforces it);
        object ids are taken as they come, as motmetrics does.
        """
        objects, hypotheses = list(object_ids), list(hypothesis_ids)
        num_objects, num_hypotheses = len(objects), len(hypotheses)
        self.frames += 1
        finite = np.isfinite(distances)
        if num_objects == 0 or num_hypotheses == 0 or not finite.any():
            self.misses += num_objects
            self.false_positives += num_hypotheses
            return
        self.raw_distance += float(distances[finite].sum())
        rows = distances.tolist()
        column = {hyp: j for j, hyp in enumerate(hypotheses)}
        object_done = [False] * num_objects
        hypothesis_done = [False] * num_hypotheses
        # 1. an object keeps its previous hypothesis whenever that pair is allowed
        for i, obj in enumerate(objects):
            j = column.get(self._pairing.get(obj, _NO_ID))
            if j is None or hypothesis_done[j] or math.isnan(rows[i][j]):
                continue
            object_done[i] = hypothesis_done[j] = True
            self.matches += 1
            self.match_distance += rows[i][j]
            self._matched_objects.add(obj)
            self._seen_hypotheses.add(hypotheses[j])
        # 2. assignment over the rest
        candidates = [(i, j) for i in range(num_objects) if not object_done[i]
                      for j in range(num_hypotheses) if not hypothesis_done[j] and not math.isnan(rows[i][j])]
        if not candidates:
            pairs = []
        elif len({i for i, _ in candidates}) == len(candidates) == len({j for _, j in candidates}):
            pairs = candidates  # nobody has a choice: every allowed pair is taken
        else:
            remaining = distances.copy()
            remaining[np.array(object_done), :] = np.nan
            remaining[:, np.array(hypothesis_done)] = np.nan
            pairs = _assign(remaining)
        for i, j in pairs:
            obj, hyp = objects[i], hypotheses[j]
            distance = rows[i][j]
            is_switch = obj in self._pairing and self._pairing[obj] != hyp
            if is_switch and hyp not in self._seen_hypotheses:
                self.extra_distance += distance  # ASCEND
            if hyp in self._reverse and self._reverse[hyp] != obj:
                if obj not in self._matched_objects:
                    self.extra_distance += distance  # MIGRATE
                self.extra_distance += distance  # TRANSFER
            self._seen_hypotheses.add(hyp)
            self._matched_objects.add(obj)
            if is_switch:
                self.switches += 1
            else:
                self.matches += 1
            self.match_distance += distance
            object_done[i] = hypothesis_done[j] = True
            self._pairing[obj] = hyp
            self._reverse[hyp] = obj
        self.misses += num_objects - sum(object_done)
        self.false_positives += num_hypotheses - sum(hypothesis_done)


_NO_ID = object()  # a key no track id equals


# ---------------------------------------------------------------------------- per-frame matching


@dataclass
class _FrameOutcome:
    """What one frame contributes.

    pred_present / pred_scores / pred_labels: (P, 15) for AP (labels: joint is a TP).
    gt_counts: (15,) annotated GT joints.
    mot: per joint (gt track ids, predicted track ids, (G_j, P_j) distances with NaN = no pair).
    """

    pred_present: np.ndarray
    pred_scores: np.ndarray
    pred_labels: np.ndarray
    gt_counts: np.ndarray
    mot: list[tuple[list[int], list[int], np.ndarray]]


_DUMMY_MOT = ([0], [0], np.full((1, 1), np.nan))


def _poseval_distance(gt_xy: np.ndarray, pred_xy: np.ndarray, head_box: np.ndarray) -> float:
    """One normalised distance computed with poseval's exact operations (np.linalg.norm of a
    2-vector, i.e. a BLAS dot product, then the division), so that a distance that lands on
    the 0.5 threshold is decided bit for bit as poseval decides it."""
    head_size = HEAD_SIZE_FACTOR * np.linalg.norm(np.subtract(head_box[2:], head_box[:2]))
    return float(np.linalg.norm(np.subtract(gt_xy, pred_xy)) / head_size)


def _evaluate_frame(gt: PoseTrackFrame, pred: PoseTrackFrame, clean: bool, source: Path | None = None) -> _FrameOutcome:
    gt_present, pred_present = gt.present, pred.present
    gt_keep = np.ones(gt.num_people, bool)
    pred_keep = np.ones(pred.num_people, bool)
    if gt.ignore_regions:
        gt_present = _remove_ignored(gt.keypoints, gt_present, gt.ignore_regions)
        pred_present = _remove_ignored(pred.keypoints, pred_present, gt.ignore_regions)
        # poseval drops a person left without joints (even one that had none to begin with)
        gt_keep, pred_keep = gt_present.any(axis=1), pred_present.any(axis=1)
    gt_present, pred_present = gt_present[gt_keep], pred_present[pred_keep]
    gt_xy, pred_xy = gt.keypoints[gt_keep], pred.keypoints[pred_keep]
    gt_ids, pred_ids = gt.track_ids[gt_keep].tolist(), pred.track_ids[pred_keep].tolist()
    pred_scores = pred.scores[pred_keep]
    num_gt, num_pred = len(gt_present), len(pred_present)
    labels = np.zeros((num_pred, NUM_JOINTS), bool)
    gt_counts = gt_present.sum(axis=0)

    if num_gt == 0 or num_pred == 0:
        if clean:
            mot = [([gt_ids[g] for g in np.flatnonzero(gt_present[:, j])],
                    [pred_ids[p] for p in np.flatnonzero(pred_present[:, j])],
                    np.full((int(gt_present[:, j].sum()), int(pred_present[:, j].sum())), np.nan))
                   for j in range(NUM_JOINTS)]
        else:
            mot = [_DUMMY_MOT] * NUM_JOINTS
        return _FrameOutcome(pred_present, pred_scores, labels, gt_counts, mot)

    box = gt.head_boxes[gt_keep]
    # poseval reads the head box of every remaining GT person here (and fails without
    # one); a person without joints never matches, so only annotated people need it.
    lacking = np.flatnonzero(gt_present.any(axis=1) & ~np.isfinite(box).all(axis=1))
    if len(lacking):
        raise PoseTrackFormatError(
            f"{source}: frame {gt.file_name}: annotated person (track id {gt_ids[lacking[0]]}) without a head box "
            "(bbox_head / x1, y1, x2, y2), needed for the PCKh head size")
    with np.errstate(divide="ignore", invalid="ignore"):
        head_size = HEAD_SIZE_FACTOR * np.sqrt((box[:, 2] - box[:, 0]) ** 2 + (box[:, 3] - box[:, 1]) ** 2)
        offset = pred_xy[:, None] - gt_xy[None]  # (P, G, 15, 2)
        distance = np.sqrt(offset[..., 0] ** 2 + offset[..., 1] ** 2) / head_size[None, :, None]
    both = pred_present[:, None, :] & gt_present[None, :, :]
    distance = np.where(both, distance, np.inf)
    # The vectorised sqrt may differ from poseval's norm in the last bit; redo the few
    # distances next to the threshold poseval's way so `<=` decides identically.
    for p, g, j in zip(*np.nonzero(np.abs(distance - DISTANCE_THRESHOLD) <= 1e-9)):
        distance[p, g, j] = _poseval_distance(gt_xy[g, j], pred_xy[p, j], box[g])
    match = distance <= DISTANCE_THRESHOLD  # (P, G, 15)

    # AP: each prediction picks its best GT by PCKh, each GT keeps its best picker.
    annotated = gt_present.sum(axis=1)
    pck = match.sum(axis=2).astype(np.float64)
    pck = np.where(annotated[None] > 0, pck / np.maximum(annotated[None], 1), pck)
    best_gt = np.argmax(pck, axis=1)
    picked = np.zeros_like(pck)
    rows = np.arange(num_pred)
    picked[rows, best_gt] = pck[rows, best_gt]
    best_pred = np.argmax(picked, axis=0)
    for g in np.flatnonzero(picked.max(axis=0) != 0):
        labels[best_pred[g]] = match[best_pred[g], g]

    # MOT: (G, P, 15) distances, NaN where the joints do not match
    pair_distance = np.where(match, distance, np.nan).transpose(1, 0, 2)
    gt_all, pred_all = gt_present.all(axis=0), pred_present.all(axis=0)
    mot = []
    for j in range(NUM_JOINTS):
        block = pair_distance[:, :, j]
        ids_gt, ids_pred = gt_ids, pred_ids
        if not gt_all[j]:
            rows = np.flatnonzero(gt_present[:, j])
            block, ids_gt = block[rows], [gt_ids[g] for g in rows]
        if not pred_all[j]:
            cols = np.flatnonzero(pred_present[:, j])
            block, ids_pred = block[:, cols], [pred_ids[p] for p in cols]
        mot.append((ids_gt, ids_pred, block))
    return _FrameOutcome(pred_present, pred_scores, labels, gt_counts, mot)


# ---------------------------------------------------------------------------- AP


def _with_total(values: np.ndarray) -> np.ndarray:
    """(15,) -> (16,): append the mean of the non-NaN joint values (poseval's "total")."""
    finite = values[~np.isnan(values)]
    total = finite.mean() if len(finite) else np.nan
    return np.append(values, total)


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PoseTrackMetrics:
    """Evaluation results; every array is (16,): poseval's 15 joints, then "total".

    Values are percentages. MOT arrays are None when tracking could not be
    evaluated (predictions without track ids, or no frame left for MOT).
    `counts` holds the per-joint (15,) MOT event counts summed over videos.
    """

    mode: str
    ap: np.ndarray
    ap_precision: np.ndarray
    ap_recall: np.ndarray
    mota: np.ndarray | None
    motp: np.ndarray | None
    precision: np.ndarray | None
    recall: np.ndarray | None
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    num_videos: int = 0
    num_frames: int = 0
    num_mot_frames: int = 0

    @staticmethod
    def group(values: np.ndarray) -> dict[str, float]:
        """Table columns: group means (NaN propagates, as poseval's getCum) and the total."""
        result = {name: float(values[list(ids)].mean()) for name, ids in JOINT_GROUPS.items()}
        result["total"] = float(values[NUM_JOINTS])
        return result

    def to_dict(self) -> dict:
        """JSON-ready: {"ap": {head..total}, "mota", "motp", "precision", "recall"} in percent, NaN -> None."""

        def clean(value):
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            # NaN / inf (undefined recall, no objects) have no JSON spelling
            return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value

        out = {"ap": self.group(self.ap)}
        for name in ("mota", "motp", "precision", "recall"):
            values = getattr(self, name)
            out[name] = None if values is None else self.group(values)
        out["mode"] = self.mode
        joints = list(POSEVAL_JOINT_NAMES) + ["total"]
        per_joint = {"names": joints, "ap": self.ap.tolist(), "ap_precision": self.ap_precision.tolist(),
                     "ap_recall": self.ap_recall.tolist()}
        for name in ("mota", "motp", "precision", "recall"):
            values = getattr(self, name)
            per_joint[name] = None if values is None else values.tolist()
        out["per_joint"] = per_joint
        out["counts"] = {k: v.tolist() for k, v in self.counts.items()}
        out["num_videos"], out["num_frames"], out["num_mot_frames"] = self.num_videos, self.num_frames, self.num_mot_frames
        return clean(out)

    def format_tables(self) -> str:
        """The two tables poseval prints, in its layout (LaTeX-style rows joined by '&')."""
        lines = ["Average Precision (AP) metric:", _header(), _row(list(self.group(self.ap).values()))]
        if self.mota is not None:
            cells = list(self.group(self.mota).values())
            cells += [float(self.motp[NUM_JOINTS]), float(self.precision[NUM_JOINTS]), float(self.recall[NUM_JOINTS])]
            lines += ["Multiple Object Tracking (MOT) metrics:", _mot_header(), _row(cells)]
        else:
            lines += ["Multiple Object Tracking (MOT) metrics: not evaluated (see the log)"]
        return "\n".join(lines)


def _cell(value: float, delimiter: str) -> str:
    return "{:>5}".format("%1.1f" % value) + delimiter


def _row(values: Sequence[float]) -> str:
    return "&" + "".join(_cell(v, " &") for v in values[:-1]) + _cell(values[-1], " \\\\")


def _header() -> str:
    return "& Head & Shou & Elb  & Wri  & Hip  & Knee & Ankl & Total\\\\"


def _mot_header() -> str:
    return ("& MOTA & MOTA & MOTA & MOTA & MOTA & MOTA & MOTA & MOTA & MOTP & Prec & Rec  \\\\\n"
            "& Head & Shou & Elb  & Wri  & Hip  & Knee & Ankl & Total& Total& Total& Total\\\\")


# ---------------------------------------------------------------------------- evaluation


def _pair_frames(gt: PoseTrackVideo, pred: PoseTrackVideo, clean: bool) -> list[tuple[PoseTrackFrame, PoseTrackFrame]]:
    """The (GT, prediction) frames that are evaluated, in GT order."""
    if not clean:
        if len(gt.frames) != len(pred.frames):
            raise ValueError(
                f"{pred.source}: video {pred.name}: {len(pred.frames)} prediction frames but {len(gt.frames)} GT frames "
                f"in {gt.source} (poseval aligns frames by position; list every GT image, in GT order)"
            )
        return [(g, p) for g, p in zip(gt.frames, pred.frames) if g.num_annotations > 0]
    key = (lambda f: f.image_id) if gt.format == "2018" and pred.format == "2018" else (lambda f: f.file_name)
    by_key = {key(f): f for f in pred.frames}
    gt_keys = {key(f) for f in gt.frames}
    unknown = sum(1 for k in by_key if k not in gt_keys)
    if unknown:
        logger.warning("%s: %d prediction frames of video %s are not in the GT; ignored", pred.source, unknown, pred.name)
    pairs = []
    for frame in gt.frames:
        labeled = frame.is_labeled if frame.is_labeled is not None else frame.num_annotations > 0
        if labeled:
            pairs.append((frame, by_key.get(key(frame)) or PoseTrackFrame.empty(frame.file_name, frame.image_id)))
    return pairs


def evaluate(
    videos: Sequence[tuple[PoseTrackVideo, PoseTrackVideo]],
    *,
    clean: bool = False,
    evaluate_tracking: bool = True,
) -> PoseTrackMetrics:
    """Evaluate (GT video, prediction video) pairs.

    Args:
        videos: pairs in the order they are pooled (poseval: the order of the GT
            folder listing; it only matters for AP score ties).
        clean: fix poseval's quirks (module docstring) instead of reproducing them.
        evaluate_tracking: compute the MOT metrics too.
    """
    scores, present, labels = [], [], []
    gt_counts = np.zeros(NUM_JOINTS, np.int64)
    accumulators_all: list[list[MotAccumulator]] = []
    num_frames = num_mot_frames = 0
    tracking = evaluate_tracking
    for gt, pred in videos:
        pairs = _pair_frames(gt, pred, clean)
        if tracking and any(not p.has_track_ids for _, p in pairs if p.num_people):
            logger.warning("%s: predictions without track_id; MOT metrics are not evaluated", pred.source)
            tracking = False
        if tracking and any(not g.has_track_ids for g, _ in pairs if g.num_people):
            logger.warning("%s: GT without track_id; MOT metrics are not evaluated", gt.source)
            tracking = False
        outcomes = [_evaluate_frame(g, p, clean, gt.source) for g, p in pairs]
        num_frames += len(outcomes)
        for outcome in outcomes:
            scores.append(outcome.pred_scores)
            present.append(outcome.pred_present)
            labels.append(outcome.pred_labels)
            gt_counts += outcome.gt_counts
        if not tracking:
            continue
        # poseval leaves the last remaining frame of every video out of MOT.
        mot_frames = outcomes if clean else outcomes[:-1]
        if not clean and len(outcomes) == 1:
            logger.warning("video %s (%s) has a single evaluated frame: poseval crashes on it; it adds nothing to MOT here",
                           gt.name, gt.source)
        num_mot_frames += len(mot_frames)
        accumulators = [MotAccumulator() for _ in range(NUM_JOINTS)]
        for outcome in mot_frames:
            for j, (gt_ids, pred_ids, distances) in enumerate(outcome.mot):
                accumulators[j].update(gt_ids, pred_ids, distances)
        accumulators_all.append(accumulators)

    scores_all = np.concatenate(scores) if scores else np.zeros((0, NUM_JOINTS))
    present_all = np.concatenate(present) if present else np.zeros((0, NUM_JOINTS), bool)
    labels_all = np.concatenate(labels) if labels else np.zeros((0, NUM_JOINTS), bool)
    ap = np.zeros(NUM_JOINTS)
    ap_precision = np.zeros(NUM_JOINTS)
    ap_recall = np.zeros(NUM_JOINTS)
    for j in range(NUM_JOINTS):
        mask = present_all[:, j]
        ap[j], ap_precision[j], ap_recall[j] = average_precision(
            scores_all[mask, j], labels_all[mask, j], float(gt_counts[j]), stable=clean)

    mota = motp = precision = recall = None
    counts: dict[str, np.ndarray] = {"gt_joints": gt_counts}
    # With no evaluated frame at all poseval still reports MOT (NaN MOTA, precision and
    # recall, MOTP 0); with frames but none left for MOT it crashes (a single-frame video).
    if tracking and (num_mot_frames > 0 or num_frames == 0):
        mota, motp, precision, recall, mot_counts = _mot_metrics(accumulators_all, clean)
        counts.update(mot_counts)
    elif tracking:
        logger.warning("no frame left for the MOT evaluation (poseval drops the last frame of every video)")
    return PoseTrackMetrics(
        mode="clean" if clean else "compatible",
        ap=_with_total(ap), ap_precision=_with_total(ap_precision), ap_recall=_with_total(ap_recall),
        mota=mota, motp=motp, precision=precision, recall=recall, counts=counts,
        num_videos=len(videos), num_frames=num_frames, num_mot_frames=num_mot_frames,
    )


def _mot_metrics(accumulators_all: list[list[MotAccumulator]], clean: bool):
    def total(attribute: str) -> np.ndarray:
        return np.array([sum(getattr(acc[j], attribute) for acc in accumulators_all) for j in range(NUM_JOINTS)], np.float64)

    misses, switches = total("misses"), total("switches")
    false_positives, objects, detections = total("false_positives"), total("objects"), total("detections")
    distance_sum = total("match_distance" if clean else "all_event_distance")
    with np.errstate(divide="ignore", invalid="ignore"):
        num_objects = np.where(objects > 0, objects, np.nan)
        mota = 100 * (1.0 - (misses + switches + false_positives) / num_objects)
        motp = np.where((detections == 0) | np.isnan(distance_sum), 0.0, 100 * (1.0 - distance_sum / np.maximum(detections, 1)))
        outputs = false_positives + detections
        precision = 100 * (detections / np.where(outputs > 0, outputs, np.nan))
        recall = 100 * (detections / num_objects)
    counts = {"misses": misses.astype(np.int64), "switches": switches.astype(np.int64),
              "false_positives": false_positives.astype(np.int64), "objects": objects.astype(np.int64),
              "detections": detections.astype(np.int64)}
    return _with_total(mota), _with_total(motp), _with_total(precision), _with_total(recall), counts


# ---------------------------------------------------------------------------- files


def _match_videos(gt_videos: list[PoseTrackVideo], pred_videos: list[PoseTrackVideo], gt_path: Path,
                  pred_path: Path) -> list[tuple[PoseTrackVideo, PoseTrackVideo]]:
    for videos, path in ((gt_videos, gt_path), (pred_videos, pred_path)):
        if not videos:
            raise ValueError(f"{path}: no images, so no video to evaluate")
    if len(gt_videos) == 1 and len(pred_videos) == 1:
        return [(gt_videos[0], pred_videos[0])]  # poseval does not compare names
    by_name = {video.name: video for video in pred_videos}
    pairs = []
    for video in gt_videos:
        if video.name not in by_name:
            raise ValueError(f"{pred_path}: no predictions for video {video.name} of {video.source}")
        pairs.append((video, by_name[video.name]))
    return pairs


def load_pairs(gt: str | os.PathLike, pred: str | os.PathLike) -> list[tuple[PoseTrackVideo, PoseTrackVideo]]:
    """Read GT and predictions and pair their videos.

    `gt` is a folder of per-video JSON files (poseval's layout; each needs a
    prediction file with the same name in the `pred` folder) or one JSON file
    (then `pred` is a file, or a folder holding a file of the same name). A
    GT folder with one prediction file pairs videos by name.
    A file holding several videos is read whole (in both modes): every GT video
    is paired with the prediction video of the same name. poseval would read
    only the first video of each file.
    """
    gt, pred = Path(gt), Path(pred)
    if not gt.exists():
        raise FileNotFoundError(f"GT path not found: {gt}")
    if not pred.exists():
        raise FileNotFoundError(f"prediction path not found: {pred}")
    gt_files = scan_json_files(gt) if gt.is_dir() else [gt]
    if not gt_files:
        raise FileNotFoundError(f"no *.json GT files in {gt}")
    pairs = []
    if not pred.is_dir() and len(gt_files) > 1:
        # One prediction file for many GT files: pair by video name over all of
        # them, never the same prediction video with every GT file.
        gt_videos = [video for gt_file in gt_files for video in read_posetrack_file(gt_file, ground_truth=True)]
        return _match_videos(gt_videos, read_posetrack_file(pred, ground_truth=False), gt, pred)
    for gt_file in gt_files:
        pred_file = pred / gt_file.name if pred.is_dir() else pred
        if not pred_file.is_file():
            raise FileNotFoundError(f"prediction file {pred_file} does not exist (needed for GT file {gt_file})")
        gt_videos = read_posetrack_file(gt_file, ground_truth=True)
        pred_videos = read_posetrack_file(pred_file, ground_truth=False)
        if len(gt_videos) > 1:
            logger.info("%s holds %d videos: all are evaluated (poseval reads only the first, %s)",
                        gt_file, len(gt_videos), gt_videos[0].name)
        pairs += _match_videos(gt_videos, pred_videos, gt_file, pred_file)
    return pairs


def evaluate_paths(gt: str | os.PathLike, pred: str | os.PathLike, *, clean: bool = False,
                   evaluate_tracking: bool = True) -> PoseTrackMetrics:
    """Read GT and predictions (see `load_pairs`) and evaluate them."""
    return evaluate(load_pairs(gt, pred), clean=clean, evaluate_tracking=evaluate_tracking)
