"""Seeded synthetic multi-person scenes with ground-truth IDs, for tracker tests.

A scene is a set of walkers (COCO-17 stick figures with a walking gait) moving
along scripted paths in a 640 x 360 image, seen through a camera that may
shake, and through a detector-noise model: keypoint jitter, occluded joints
with low confidence and guessed positions, missed detections in short bursts,
false positives, score noise, and shuffled detection order. People hide each
other (the one whose feet are lower in the image is in front) and static
pillars hide people; a person with fewer than `min_visible_keypoints` visible
joints is neither in the ground truth nor detected, as in PoseTrack.

`render=True` also paints each frame (textured background, pillars and
people as textured rigid patches), so optical flow can be exercised.

numpy only, so tests and benchmarks share it. Everything is in image pixels,
x right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IMAGE_SIZE_PX = (640, 360)  # (width, height)

# COCO-17 keypoints of a person of height 1, origin at the mid-hip, x right, y down.
_TEMPLATE = np.array([
    (0.0, -0.40), (0.02, -0.42), (-0.02, -0.42), (0.045, -0.41), (-0.045, -0.41),
    (0.10, -0.30), (-0.10, -0.30), (0.13, -0.16), (-0.13, -0.16), (0.13, -0.03), (-0.13, -0.03),
    (0.06, 0.0), (-0.06, 0.0), (0.06, 0.24), (-0.06, 0.24), (0.06, 0.47), (-0.06, 0.47),
], np.float32)
# Horizontal swing of each joint per unit of sin(gait phase), in heights.
_SWING = np.array([0, 0, 0, 0, 0, 0, 0, -0.03, 0.03, -0.07, 0.07, 0, 0, 0.05, -0.05, 0.10, -0.10], np.float32)

SCENARIOS = ("walking", "crossing", "occlusion", "enter_leave", "jitter", "crowd", "still_reversing")


@dataclass(frozen=True)
class DetectorNoise:
    """How the simulated detector + pose estimator errs.

    keypoint_jitter: std of visible-keypoint noise, in person heights.
    occluded_jitter: std of the guessed position of an occluded joint, in heights.
    miss_rate: per person and frame, probability that a miss burst starts.
    max_miss_frames: a burst lasts 1 to this many frames.
    false_positives_per_frame: mean of the Poisson number of false detections.
    score_noise: std of the noise on the detection score.
    visible_confidence, occluded_confidence: ranges of keypoint confidence.
    min_visible_keypoints: fewer visible joints: not in ground truth, not detected.
    pose_jitter: std of an offset shared by all joints of a detection, in heights
        (a top-down estimator's pose moves with its detector box and heatmap grid).
    """

    keypoint_jitter: float = 0.008
    occluded_jitter: float = 0.04
    miss_rate: float = 0.02
    max_miss_frames: int = 2
    false_positives_per_frame: float = 0.15
    score_noise: float = 0.08
    visible_confidence: tuple[float, float] = (0.6, 0.95)
    occluded_confidence: tuple[float, float] = (0.0, 0.25)
    min_visible_keypoints: int = 5
    pose_jitter: float = 0.0


# A scenario's own detector noise, where it differs from `DetectorNoise()`: the
# looped still clip of issue 14 showed three people and nobody else, seen by a
# top-down estimator whose whole pose jitters with its box (1% of the height here).
_SCENARIO_NOISE = {"still_reversing": DetectorNoise(pose_jitter=0.01, false_positives_per_frame=0.0)}


@dataclass(frozen=True)
class SceneFrame:
    """One frame of a scene.

    keypoints: (N, 17, 3) float32 detections [x, y, confidence] px, shuffled order.
    boxes: (N, 4) float32 xyxy px (keypoint extent padded 10%).
    scores: (N,) float32 detection scores.
    detection_gt_ids: (N,) int64 ground-truth ID of each detection, -1 for false positives.
    gt_ids: (G,) int64 IDs of the people visible in this frame.
    gt_keypoints: (G, 17, 3) float32 true [x, y, visibility] px; visibility 2 visible,
        1 occluded inside the image, 0 outside the image.
    gt_boxes: (G, 4) float32 xyxy px.
    image: (H, W, 3) uint8 BGR when the scene was rendered, else None.
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    detection_gt_ids: np.ndarray
    gt_ids: np.ndarray
    gt_keypoints: np.ndarray
    gt_boxes: np.ndarray
    image: np.ndarray | None = None


@dataclass(frozen=True)
class Scene:
    name: str
    frames: tuple[SceneFrame, ...]
    size_px: tuple[int, int] = IMAGE_SIZE_PX
    num_people: int = 0


@dataclass
class Walker:
    person_id: int
    height_px: float
    path: np.ndarray  # (T, 2) float32 mid-hip positions in world px; NaN when absent
    phase_offset: float = 0.0
    texture_seed: int = 0
    poses: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        step = np.linalg.norm(np.diff(self.path, axis=0, prepend=self.path[:1]), axis=1)
        step = np.nan_to_num(step)
        direction = np.sign(np.nan_to_num(np.diff(self.path[:, 0], prepend=self.path[0, 0])))
        phase = self.phase_offset + 2 * np.pi * np.cumsum(step) / (0.7 * self.height_px)
        swing = (np.sin(phase) * np.where(direction == 0, 1.0, direction))[:, None] * _SWING[None, :]
        offsets = np.repeat(_TEMPLATE[None], len(self.path), axis=0).copy()
        offsets[..., 0] += swing
        self.poses = (self.path[:, None, :] + offsets * self.height_px).astype(np.float32)


def bouncing_path(start, velocity, num_frames, low=(30.0, 0.0), high=(610.0, 360.0)) -> np.ndarray:
    """Straight motion at `velocity` px/frame, reflected at the x limits."""
    position = np.array(start, np.float64)
    velocity = np.array(velocity, np.float64)
    path = np.zeros((num_frames, 2), np.float32)
    for t in range(num_frames):
        path[t] = position
        position = position + velocity
        for axis in (0, 1):
            if position[axis] < low[axis] or position[axis] > high[axis]:
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(position[axis], low[axis], high[axis])
    return path


def _line(start, velocity, num_frames, first_frame=0, last_frame=None) -> np.ndarray:
    """Straight path; NaN outside [first_frame, last_frame)."""
    t = np.arange(num_frames, dtype=np.float32)[:, None]
    path = np.asarray(start, np.float32)[None] + (t - first_frame) * np.asarray(velocity, np.float32)[None]
    absent = (t[:, 0] < first_frame) | (t[:, 0] >= (num_frames if last_frame is None else last_frame))
    path[absent] = np.nan
    return path.astype(np.float32)


def _back_and_forth(start, drift, half_period: int, num_frames: int) -> np.ndarray:
    """A clip played forward then backward, over and over: `start` + `drift` * a
    triangle wave rising from 0 to 1 over `half_period` frames and back."""
    t = np.arange(num_frames) % (2 * half_period)
    ramp = np.minimum(t, 2 * half_period - t) / half_period
    return (np.asarray(start, np.float32)[None] + ramp[:, None] * np.asarray(drift, np.float32)[None]).astype(
        np.float32)


def _script(name: str, rng: np.random.Generator, num_frames: int):
    """Walkers, pillars (x1, y1, x2, y2) and camera shake std (px) of a scenario."""
    walkers: list[tuple[float, np.ndarray]] = []
    pillars: list[tuple[float, float, float, float]] = []
    shake_px = 0.0
    if name == "walking":
        walkers = [(95, bouncing_path((100, 80), (3.0, 0), num_frames)),
                   (95, bouncing_path((450, 80), (3.0, 0), num_frames)),
                   (100, bouncing_path((500, 190), (-4.0, 0), num_frames)),
                   (105, bouncing_path((200, 300), (2.0, 0), num_frames))]
    elif name in ("crossing", "jitter"):
        # Pairs walk towards each other in one lane (the lower one in front)
        # and a third pair crosses diagonally: each crossing hides the back one.
        mid = num_frames // 2
        walkers = [(130, _line((320 - 4.0 * mid, 110), (4.0, 0), num_frames)),
                   (130, _line((320 + 4.0 * mid, 116), (-4.0, 0), num_frames)),
                   (140, _line((300 - 3.0 * mid, 265), (3.0, 0), num_frames)),
                   (140, _line((300 + 5.0 * mid, 270), (-5.0, 0), num_frames)),
                   (120, _line((200 - 3.0 * (mid + 10), 100 + 2.0 * (mid + 10)),
                               (3.0, -1.0), num_frames)),
                   (120, _line((200 + 3.0 * (mid + 10), 180 - 0.5 * (mid + 10)),
                               (-3.0, 0.5), num_frames))]
        shake_px = 6.0 if name == "jitter" else 0.0
    elif name == "occlusion":
        pillars = [(250, 0, 285, 360), (470, 0, 500, 360)]
        walkers = [(120, bouncing_path((60, 100), (5.0, 0), num_frames)),
                   (125, bouncing_path((600, 260), (-4.0, 0), num_frames)),
                   # Overtaking in one lane: the slower one is in front and hides the other.
                   (130, bouncing_path((80, 180), (2.0, 0), num_frames, low=(30, 0), high=(380, 360))),
                   (130, bouncing_path((30, 174), (4.5, 0), num_frames, low=(30, 0), high=(380, 360)))]
    elif name == "enter_leave":
        walkers = [(110, _line((-40, 100), (4.0, 0), num_frames, 0)),
                   (120, _line((690, 250), (-5.0, 0), num_frames, 15)),
                   (100, _line((-40, 180), (3.0, 0), num_frames, 40))]
        # One person walks out on the right, turns outside the image and comes back.
        out_and_back = np.concatenate([
            _line((520, 300), (4.0, 0), 40), _line((680, 300), (-4.0, 0), num_frames - 40)])
        walkers.append((115, out_and_back.astype(np.float32)))
    elif name == "crowd":
        for _ in range(10):
            height = rng.uniform(90, 150)
            start = (rng.uniform(40, 600), rng.uniform(80, 300))
            speed = rng.uniform(2.0, 5.0) * rng.choice([-1, 1])
            walkers.append((height, bouncing_path(start, (speed, rng.uniform(-0.5, 0.5)), num_frames,
                                                   low=(30, 80), high=(610, 300))))
    elif name == "still_reversing":
        # Issue 14's clip: a short video looped forward then backward, three people
        # who barely move (their boxes drift a few px, then drift back).
        for start in ((160, 190), (330, 200), (500, 185)):
            walkers.append((rng.uniform(110, 140), _back_and_forth(start, rng.uniform(-8, 8, 2), 4, num_frames)))
    else:
        raise ValueError(f"unknown scenario {name!r}; choose from {SCENARIOS}")
    return walkers, pillars, shake_px


def _visibility(poses: np.ndarray, depth: np.ndarray, present: np.ndarray, pillars, size_px) -> np.ndarray:
    """(P, 17) int visibility codes (2 visible, 1 occluded, 0 outside) of the posed people in one frame."""
    width, height = size_px
    inside = ((poses[..., 0] >= 0) & (poses[..., 0] < width) & (poses[..., 1] >= 0) & (poses[..., 1] < height))
    occluded = np.zeros(inside.shape, bool)
    boxes = _boxes(poses)
    for front in np.nonzero(present)[0]:
        behind = present & (depth < depth[front])
        x1, y1, x2, y2 = boxes[front]
        occluded |= behind[:, None] & (poses[..., 0] >= x1) & (poses[..., 0] <= x2) \
            & (poses[..., 1] >= y1) & (poses[..., 1] <= y2)
    for x1, y1, x2, y2 in pillars:
        occluded |= (poses[..., 0] >= x1) & (poses[..., 0] <= x2) & (poses[..., 1] >= y1) & (poses[..., 1] <= y2)
    return np.where(inside, np.where(occluded, 1, 2), 0)


def _boxes(poses: np.ndarray, pad: float = 0.1) -> np.ndarray:
    """(P, 4) float32 xyxy extent of poses (P, 17, >=2), padded by `pad` of the size."""
    low = poses[..., :2].min(axis=1)
    high = poses[..., :2].max(axis=1)
    margin = (high - low) * pad / 2
    return np.concatenate([low - margin, high + margin], axis=1).astype(np.float32)


class _Painter:
    """Paints frames: a textured background and people as rigid textured patches."""

    def __init__(self, rng: np.random.Generator, size_px, shake_margin: int = 40) -> None:
        width, height = size_px
        self.size_px = size_px
        self.margin = shake_margin
        # Dim background, grey pillars, colourful people: readable by eye, textured for flow.
        self.background = random_texture(rng, height + 2 * shake_margin, width + 2 * shake_margin, tint=(70, 90, 80))
        self.pillar_texture = random_texture(rng, height + 2 * shake_margin, width + 2 * shake_margin, cell=6,
                                       tint=(150, 150, 150))

    def paint(self, walkers, poses, depth, present, pillars, shake, textures) -> np.ndarray:
        width, height = self.size_px
        ox, oy = int(round(self.margin - shake[0])), int(round(self.margin - shake[1]))
        image = self.background[oy:oy + height, ox:ox + width].copy()
        for index in np.argsort(depth):  # back to front
            if not present[index]:
                continue
            centre = poses[index, 11:13, :2].mean(axis=0)
            x1, y1, x2, y2 = _boxes(poses[index][None])[0]
            texture = textures[walkers[index].person_id]
            th, tw = texture.shape[:2]
            left, top = int(np.floor(x1)), int(np.floor(y1))
            right, bottom = int(np.ceil(x2)), int(np.ceil(y2))
            cx, cy = int(round(centre[0])), int(round(centre[1]))
            u0, v0 = tw // 2 + left - cx, th // 2 + top - cy  # texture anchored at the hips
            cl, ct = max(left, 0), max(top, 0)
            cr, cb = min(right, width), min(bottom, height)
            if cr <= cl or cb <= ct or u0 < 0 or v0 < 0 or u0 + (right - left) > tw or v0 + (bottom - top) > th:
                continue
            image[ct:cb, cl:cr] = texture[v0 + ct - top:v0 + cb - top, u0 + cl - left:u0 + cr - left]
        for x1, y1, x2, y2 in pillars:
            sx1, sy1 = int(max(x1 + shake[0], 0)), int(max(y1 + shake[1], 0))
            sx2, sy2 = int(min(x2 + shake[0], width)), int(min(y2 + shake[1], height))
            image[sy1:sy2, sx1:sx2] = self.pillar_texture[sy1:sy2, sx1:sx2]
        return image


def random_texture(rng: np.random.Generator, height: int, width: int, cell: int = 4, tint=None) -> np.ndarray:
    """(H, W, 3) uint8 blocky random texture with fine noise: corners for Lucas-Kanade.

    tint: BGR mean colour; the texture then varies +-60 around it.
    """
    coarse = rng.integers(0, 256, size=(height // cell + 1, width // cell + 1, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)[:height, :width].astype(np.int16)
    image += rng.integers(-20, 21, size=image.shape, dtype=np.int16)
    if tint is not None:
        image = np.asarray(tint, np.int16) + (image - 128) * 60 // 128
    return np.clip(image, 0, 255).astype(np.uint8)


def make_scene(
    name: str,
    seed: int = 0,
    num_frames: int = 120,
    noise: DetectorNoise | None = None,
    render: bool = False,
) -> Scene:
    """Build a seeded scenario (one of `SCENARIOS`) as detections plus ground truth.

    noise: the detector's errors; None for the scenario's own (`DetectorNoise()`
    for most).
    """
    noise = noise or _SCENARIO_NOISE.get(name, DetectorNoise())
    rng = np.random.default_rng(seed)
    scripted, pillars, shake_std = _script(name, rng, num_frames)
    walkers = [Walker(person_id, float(height), path, float(rng.uniform(0, 2 * np.pi)), int(rng.integers(1 << 30)))
               for person_id, (height, path) in enumerate(scripted, start=1)]
    size_px = IMAGE_SIZE_PX
    # Painting draws from its own generator, so a rendered scene has exactly the
    # detections of the same scene without images.
    painter = _Painter(np.random.default_rng([seed, 1]), size_px) if render else None
    textures = {}
    if render:
        for walker in walkers:
            side = int(walker.height_px * 2.2)
            texture_rng = np.random.default_rng(walker.texture_seed)
            textures[walker.person_id] = random_texture(texture_rng, side, side, tint=texture_rng.integers(90, 230, 3))

    paint = None
    if render:
        def paint(poses, depth, present, shake, _frame_index):
            return painter.paint(walkers, poses, depth, present, pillars, shake, textures)
    return simulate_scene(name, walkers, pillars, shake_std, noise, rng, num_frames, paint)


def simulate_scene(name: str, walkers: list, pillars, shake_std: float, noise: DetectorNoise,
                   rng: np.random.Generator, num_frames: int, paint=None) -> Scene:
    """The frames of scripted walkers (`Walker`s, their poses in world px) seen
    through the camera shake, the occlusion model and the detector noise.

    paint: None (no images) or `paint(poses (P, 17, 2) px, depth (P,), present
    (P,) bool, shake (2,) px, frame_index) -> (H, W, 3) uint8 BGR image`.
    """
    size_px = IMAGE_SIZE_PX
    shake = np.zeros(2, np.float32)
    miss_left = np.zeros(len(walkers), np.int64)
    frames = []
    for t in range(num_frames):
        shake = (0.7 * shake + rng.normal(0, shake_std, 2)).astype(np.float32) if shake_std else shake
        poses = np.stack([walker.poses[t] for walker in walkers]) + shake
        present = ~np.isnan(poses[:, 0, 0])
        poses = np.nan_to_num(poses, nan=-1e4)
        heights = np.array([walker.height_px for walker in walkers], np.float32)
        depth = poses[:, 15:17, 1].mean(axis=1)  # lower feet = nearer the camera
        visibility = _visibility(poses, depth, present, [tuple(np.add(p, [*shake, *shake])) for p in pillars],
                                 size_px)
        visible_count = (visibility == 2).sum(axis=1)
        in_truth = present & (visible_count >= noise.min_visible_keypoints)

        starts = rng.random(len(walkers)) < noise.miss_rate
        miss_left = np.where((miss_left == 0) & starts, rng.integers(1, noise.max_miss_frames + 1, len(walkers)),
                             miss_left)
        detected = in_truth & (miss_left == 0)
        miss_left = np.maximum(miss_left - 1, 0)

        det_keypoints, det_ids = [], []
        for index in np.nonzero(detected)[0]:
            visible = visibility[index] == 2
            jitter = np.where(visible, noise.keypoint_jitter, noise.occluded_jitter)[:, None] * heights[index]
            xy = poses[index] + rng.normal(0, 1, (17, 2)) * jitter
            if noise.pose_jitter:  # (drawn only when on: the other scenes keep their random stream)
                xy = xy + rng.normal(0, noise.pose_jitter * heights[index], 2)
            confidence = np.where(visible, rng.uniform(*noise.visible_confidence, 17),
                                  rng.uniform(*noise.occluded_confidence, 17))
            det_keypoints.append(np.concatenate([xy, confidence[:, None]], axis=1))
            det_ids.append(walkers[index].person_id)
        det_scores = [float(np.clip(0.9 - 0.6 * (1 - (visibility[i] == 2).mean()) + rng.normal(0, noise.score_noise),
                                    0.05, 1.0)) for i in np.nonzero(detected)[0]]
        for _ in range(rng.poisson(noise.false_positives_per_frame)):
            height = rng.uniform(80, 160)
            centre = rng.uniform((40, 60), (600, 300))
            xy = centre + _TEMPLATE * height + rng.normal(0, 0.08 * height, (17, 2))
            det_keypoints.append(np.concatenate([xy, rng.uniform(0.2, 0.7, (17, 1))], axis=1))
            det_ids.append(-1)
            det_scores.append(float(rng.uniform(0.2, 0.65)))
        order = rng.permutation(len(det_keypoints))
        keypoints = np.asarray(det_keypoints, np.float32).reshape(-1, 17, 3)[order]
        truth = np.nonzero(in_truth)[0]
        gt_keypoints = np.concatenate([poses[truth], visibility[truth, :, None]], axis=2).astype(np.float32)
        image = paint(poses, depth, present, shake, t) if paint is not None else None
        frames.append(SceneFrame(
            keypoints=keypoints,
            boxes=_boxes(keypoints),
            scores=np.asarray(det_scores, np.float32)[order],
            detection_gt_ids=np.asarray(det_ids, np.int64)[order],
            gt_ids=np.array([walkers[i].person_id for i in truth], np.int64),
            gt_keypoints=gt_keypoints.reshape(-1, 17, 3),
            gt_boxes=_boxes(poses[truth]).reshape(-1, 4),
            image=image,
        ))
    return Scene(name, tuple(frames), size_px, len(walkers))


def make_crowd_detections(num_people: int, num_frames: int, seed: int = 0,
                          size_px: tuple[int, int] = (1920, 1080)) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Noisy detections of `num_people` walkers bouncing around a large image (no
    occlusion model, no ground truth): cheap input for speed benchmarks.

    Returns one (keypoints (N, 17, 3) float32, boxes (N, 4) float32, scores (N,) float32) per frame.
    """
    rng = np.random.default_rng(seed)
    width, height = size_px
    walkers = [
        Walker(index, float(rng.uniform(80, 160)),
                bouncing_path((rng.uniform(40, width - 40), rng.uniform(80, height - 80)),
                               (rng.uniform(-5, 5), rng.uniform(-1, 1)), num_frames,
                               low=(40, 80), high=(width - 40, height - 80)),
                float(rng.uniform(0, 2 * np.pi)))
        for index in range(num_people)
    ]
    frames = []
    for t in range(num_frames):
        poses = np.stack([walker.poses[t] for walker in walkers]).reshape(-1, 17, 2)
        heights = np.array([walker.height_px for walker in walkers], np.float32).reshape(-1, 1, 1)
        xy = poses + rng.normal(0, 1, poses.shape).astype(np.float32) * 0.008 * heights
        confidence = rng.uniform(0.5, 0.95, (num_people, 17, 1)).astype(np.float32)
        keypoints = np.concatenate([xy, confidence], axis=2).astype(np.float32)[rng.permutation(num_people)]
        scores = np.clip(rng.normal(0.85, 0.05, num_people), 0, 1).astype(np.float32)
        frames.append((keypoints, _boxes(keypoints), scores))
    return frames


def standing_pose(centre_xy, height_px: float = 120.0, confidence: float = 0.9) -> np.ndarray:
    """(17, 3) float32 [x, y, confidence] COCO pose of a standing person, mid-hip at `centre_xy` (px)."""
    xy = np.asarray(centre_xy, np.float32)[None, :] + _TEMPLATE * np.float32(height_px)
    return np.concatenate([xy, np.full((17, 1), confidence, np.float32)], axis=1)
