"""A slow, loop-by-loop restatement of poseval's evaluation, for cross-checking ours.

It follows the official code path step by step (first video of a file only, frame cleanup, ignore
regions, per-frame greedy assignment, computeRPC / VOCap, one motmetrics
accumulator per joint and video with the last frame left out, MOTP over every
event distance) on PoseTrack18 documents, using the real `motmetrics`
package for the MOT part. It is deliberately naive (Python loops, dicts) so
that it shares no code with `evaluation.posetrack`. poseval uses shapely
for the ignore regions; shapely is not a dependency, so a plain even-odd test
is used here (the synthetic regions keep points off polygon edges).
"""

from __future__ import annotations

import math
import os

import motmetrics as mm
import numpy as np

NUM_JOINTS = 15
NAMES15 = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
           "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "head_bottom", "nose", "head_top"]


def _inside(x, y, xs, ys):
    result = False
    n = len(xs)
    for k in range(n):
        x1, y1, x2, y2 = xs[k], ys[k], xs[(k + 1) % n], ys[(k + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            result = not result
    return result


def _video_id(image):
    return os.path.basename(os.path.dirname(image["file_name"])).split("_")[0]


def _frames(doc, ground_truth):
    names = doc["categories"][0]["keypoints"]
    frames = []
    # poseval converts a file and keeps only its first video: convert_videos(data)[0]
    first = _video_id(doc["images"][0])
    for image in (image for image in doc["images"] if _video_id(image) == first):
        people = []
        for ann in doc["annotations"]:
            if ann["image_id"] != image["id"]:
                continue
            points = {}
            kp = ann["keypoints"]
            for k, name in enumerate(names):
                if name not in NAMES15:
                    continue
                x, y, v = kp[3 * k: 3 * k + 3]
                if x == 0 and y == 0 and v == 0:
                    continue
                score = ann["scores"][k] if ann.get("scores") else -9999
                points[NAMES15.index(name)] = (x, y, score)
            head = None
            if "bbox_head" in ann:
                bx, by, bw, bh = ann["bbox_head"]
                head = (bx, by, bx + bw, by + bh)
            people.append({"track_id": ann["track_id"], "points": points, "head": head})
        regions = []
        if ground_truth and image.get("ignore_regions_x"):
            regions = list(zip(image["ignore_regions_x"], image["ignore_regions_y"]))
        frames.append({"people": people, "regions": regions})
    return frames


def _assign(gt_people, pr_people):
    """Per frame: (scores, labels) per joint for AP, and MOT inputs per joint."""
    n_pr, n_gt = len(pr_people), len(gt_people)
    ap = {j: [] for j in range(NUM_JOINTS)}
    if n_pr and n_gt:
        dist = np.full((n_pr, n_gt, NUM_JOINTS), np.inf)
        for g, gt in enumerate(gt_people):
            x1, y1, x2, y2 = gt["head"]
            head = 0.6 * np.linalg.norm(np.subtract([x2, y2], [x1, y1]))
            for p, pr in enumerate(pr_people):
                for j in range(NUM_JOINTS):
                    if j in gt["points"] and j in pr["points"]:
                        gx, gy = gt["points"][j][:2]
                        px, py = pr["points"][j][:2]
                        dist[p, g, j] = np.linalg.norm(np.subtract([gx, gy], [px, py])) / head
        match = dist <= 0.5
        pck = 1.0 * np.sum(match, axis=2)
        for p in range(n_pr):
            for g in range(n_gt):
                if len(gt_people[g]["points"]) > 0:
                    pck[p, g] = pck[p, g] / len(gt_people[g]["points"])
        best = np.argmax(pck, axis=1)
        for p in range(n_pr):
            for g in range(n_gt):
                if g != best[p]:
                    pck[p, g] = 0
        pr_to_gt = np.argmax(pck, axis=0)
        pr_to_gt[np.max(pck, axis=0) == 0] = -1
        for p, pr in enumerate(pr_people):
            matched = [g for g in range(n_gt) if pr_to_gt[g] == p]
            for j in range(NUM_JOINTS):
                if j in pr["points"]:
                    label = bool(match[p, matched[0], j]) if matched else False
                    ap[j].append((pr["points"][j][2], label))
        mot = []
        for j in range(NUM_JOINTS):
            gts = [g for g in range(n_gt) if j in gt_people[g]["points"]]
            prs = [p for p in range(n_pr) if j in pr_people[p]["points"]]
            d = np.full((len(gts), len(prs)), np.nan)
            for a, g in enumerate(gts):
                for b, p in enumerate(prs):
                    if match[p, g, j]:
                        d[a, b] = dist[p, g, j]
            mot.append(([gt_people[g]["track_id"] for g in gts], [pr_people[p]["track_id"] for p in prs], d))
    else:
        for pr in pr_people:
            for j in range(NUM_JOINTS):
                if j in pr["points"] and not n_gt:
                    ap[j].append((pr["points"][j][2], False))
        mot = [([0], [0], np.full((1, 1), np.nan)) for _ in range(NUM_JOINTS)]
    n_gt_joints = [sum(1 for gt in gt_people if j in gt["points"]) for j in range(NUM_JOINTS)]
    return ap, mot, n_gt_joints


def _voc_ap(scores, labels, total):
    order = np.array(scores).argsort()[::-1]
    labels = np.array(labels)[order]
    precision, recall, npos = [], [], 0
    for k in range(len(order)):
        npos += int(labels[k] == 1)
        recall.append(1.0 * npos / total if total else (math.nan if npos == 0 else math.inf))
        precision.append(1.0 * npos / (k + 1))
    mpre = [0.0] + precision + [0.0]
    mrec = [0.0] + recall + [1.0]
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    ap = 0.0
    for k in range(1, len(mrec)):
        if mrec[k] != mrec[k - 1]:
            ap += (mrec[k] - mrec[k - 1]) * mpre[k]
    return ap * 100, precision[-1] * 100, recall[-1] * 100


def poseval(gt_docs, pred_docs):
    """poseval -e -t on per-video documents; returns dict of (16,) arrays."""
    all_ap = {j: [] for j in range(NUM_JOINTS)}
    n_gt = np.zeros(NUM_JOINTS)
    sums = {k: np.zeros(NUM_JOINTS) for k in ("miss", "switch", "fp", "obj", "det", "d")}
    metrics = mm.metrics.create()
    for gt_doc, pr_doc in zip(gt_docs, pred_docs):
        gt_frames, pr_frames = _frames(gt_doc, True), _frames(pr_doc, False)
        keep = [t for t in range(len(gt_frames)) if gt_frames[t]["people"]]
        motframes = []
        for t in keep:
            gt_people, pr_people = gt_frames[t]["people"], pr_frames[t]["people"]
            if gt_frames[t]["regions"]:
                for people in (gt_people, pr_people):
                    for person in people:
                        person["points"] = {j: v for j, v in person["points"].items()
                                            if not any(_inside(v[0], v[1], xs, ys) for xs, ys in gt_frames[t]["regions"])}
                gt_people = [p for p in gt_people if p["points"]]
                pr_people = [p for p in pr_people if p["points"]]
            ap, mot, counts = _assign(gt_people, pr_people)
            for j in range(NUM_JOINTS):
                all_ap[j] += ap[j]
                n_gt[j] += counts[j]
            motframes.append(mot)
        accumulators = [mm.MOTAccumulator(auto_id=True) for _ in range(NUM_JOINTS)]
        for mot in motframes[:-1]:
            for j in range(NUM_JOINTS):
                accumulators[j].update(*mot[j])
        for j in range(NUM_JOINTS):
            m = metrics.compute(accumulators[j], metrics=["num_misses", "num_switches", "num_false_positives",
                                                          "num_objects", "num_detections"], return_dataframe=False)
            sums["miss"][j] += m["num_misses"]
            sums["switch"][j] += m["num_switches"]
            sums["fp"][j] += m["num_false_positives"]
            sums["obj"][j] += m["num_objects"]
            sums["det"][j] += m["num_detections"]
            s = accumulators[j].events["D"].sum()
            sums["d"][j] += 0 if np.isnan(s) else s
    ap = np.zeros(16)
    for j in range(NUM_JOINTS):
        if all_ap[j]:
            ap[j] = _voc_ap([s for s, _ in all_ap[j]], [l for _, l in all_ap[j]], n_gt[j])[0]
    ap[15] = np.nanmean(ap[:15])
    obj = np.where(sums["obj"] > 0, sums["obj"], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        mota = 100 * (1 - (sums["miss"] + sums["switch"] + sums["fp"]) / obj)
        motp = np.where(sums["det"] == 0, 0.0, 100 * (1 - sums["d"] / sums["det"]))
        pre = 100 * sums["det"] / (sums["fp"] + sums["det"])
        rec = 100 * sums["det"] / obj
    out = {"ap": ap}
    for name, v in (("mota", mota), ("motp", motp), ("precision", pre), ("recall", rec)):
        finite = v[~np.isnan(v)]
        out[name] = np.append(v, finite.mean() if len(finite) else np.nan)
    return out
