"""Small builders of synthetic PoseTrack18 GT / prediction files for the evaluator tests.

People are dicts with poseval-order joints: {"track_id": int, "joints": (15, 2)
float px, "present": (15,) bool, "scores": (15,) float, "head": [x, y, w, h]}.
A frame is a list of people; a video is a list of frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.posetrack_format import POSETRACK18_KEYPOINT_NAMES, POSEVAL_JOINT_NAMES

# PoseTrack18 file position -> poseval joint id (-1 for the ears).
FILE_TO_POSEVAL = [POSEVAL_JOINT_NAMES.index(n) if n in POSEVAL_JOINT_NAMES else -1 for n in POSETRACK18_KEYPOINT_NAMES]

# A standing person (poseval joint order), in units of the head-box side; y down.
_SKELETON = np.array([
    [-0.6, 6.0], [-0.6, 4.6], [-0.5, 3.2], [0.5, 3.2], [0.6, 4.6], [0.6, 6.0],     # r/l legs
    [-1.4, 3.0], [-1.3, 2.0], [-1.0, 1.0], [1.0, 1.0], [1.3, 2.0], [1.4, 3.0],     # r/l arms
    [0.0, 0.6], [0.0, 0.0], [0.0, -0.5],                                           # neck, nose, head top
])


def make_person(track_id: int, x: float, y: float, head_px: float = 40.0, score: float = 0.9) -> dict:
    """A person whose head box (side head_px) is centred at (x, y)."""
    joints = np.array([x, y]) + _SKELETON * head_px
    return {
        "track_id": track_id,
        "joints": joints,
        "present": np.ones(15, bool),
        "scores": np.full(15, score),
        "head": [x - head_px / 2, y - head_px / 2, head_px, head_px],
    }


def copy_people(frame: list[dict]) -> list[dict]:
    return [{**p, "joints": p["joints"].copy(), "present": p["present"].copy(), "scores": p["scores"].copy()} for p in frame]


def document(video: str, frames: list[list[dict]], *, labeled: list[bool] | None = None,
             ignore_regions: dict[int, list[np.ndarray]] | None = None, with_scores: bool = True) -> dict:
    """A PoseTrack18 JSON document for one video (frame t has image id 10000 * 1 + t)."""
    images, annotations = [], []
    for t, people in enumerate(frames):
        image_id = 10_000_000 + t
        image = {"file_name": f"images/val/{video}/{t:06d}.jpg", "id": image_id, "frame_id": image_id,
                 "is_labeled": bool(labeled[t]) if labeled is not None else bool(people), "nframes": len(frames)}
        if ignore_regions and t in ignore_regions:
            image["ignore_regions_x"] = [poly[:, 0].tolist() for poly in ignore_regions[t]]
            image["ignore_regions_y"] = [poly[:, 1].tolist() for poly in ignore_regions[t]]
        images.append(image)
        for person in people:
            keypoints, scores = [], []
            for joint in FILE_TO_POSEVAL:
                if joint >= 0 and person["present"][joint]:
                    keypoints += [float(person["joints"][joint, 0]), float(person["joints"][joint, 1]), 1]
                    scores.append(float(person["scores"][joint]))
                else:
                    keypoints += [0, 0, 0]
                    scores.append(0.0)
            annotations.append({
                "id": len(annotations), "image_id": image_id, "track_id": int(person["track_id"]),
                "keypoints": keypoints, "scores": scores if with_scores else [], "bbox_head": list(person["head"]),
                "category_id": 1,
            })
    category = {"id": 1, "name": "person", "keypoints": list(POSETRACK18_KEYPOINT_NAMES)}
    return {"images": images, "annotations": annotations, "categories": [category]}


def write_video(folder: Path, video: str, doc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{video}.json"
    path.write_text(json.dumps(doc))
    return path


def random_video(rng: np.random.Generator, num_frames: int, num_people: int, width: float = 1280, height: float = 720) -> list[list[dict]]:
    """People walking in straight lines; some joints unannotated; head sizes 25-60 px."""
    starts = rng.uniform([100, 80], [width - 100, height - 350], size=(num_people, 2))
    velocities = rng.normal(0, 6, size=(num_people, 2))
    heads = rng.uniform(25, 60, size=num_people)
    frames = []
    for t in range(num_frames):
        people = []
        for k in range(num_people):
            x, y = starts[k] + velocities[k] * t
            person = make_person(k, x, y, heads[k])
            person["present"] = rng.random(15) > 0.1
            people.append(person)
        frames.append(people)
    return frames


def noisy_predictions(rng: np.random.Generator, frames: list[list[dict]], *, noise_heads: float = 0.25,
                      drop_person: float = 0.1, drop_joint: float = 0.1, extra_person: float = 0.2,
                      swap_ids: float = 0.05, empty_frame: float = 0.05) -> list[list[dict]]:
    """Predictions with Gaussian jitter (in head sizes), misses, FPs, ID swaps and empty frames.

    Scores are continuous random values, so AP has no ties.
    """
    out = []
    for people in frames:
        if rng.random() < empty_frame:
            out.append([])
            continue
        predicted = []
        for person in copy_people(people):
            if rng.random() < drop_person:
                continue
            head = person["head"][2]
            person["joints"] = person["joints"] + rng.normal(0, noise_heads * head, size=(15, 2))
            person["present"] = rng.random(15) > drop_joint
            person["scores"] = rng.random(15)
            person["track_id"] = person["track_id"] + 100
            predicted.append(person)
        if len(predicted) >= 2 and rng.random() < swap_ids:
            predicted[0]["track_id"], predicted[1]["track_id"] = predicted[1]["track_id"], predicted[0]["track_id"]
        if rng.random() < extra_person:
            ghost = make_person(500 + len(out), *rng.uniform([100, 80], [1100, 400]), head_px=rng.uniform(25, 60))
            ghost["scores"] = rng.random(15)
            predicted.append(ghost)
        out.append(predicted)
    return out
