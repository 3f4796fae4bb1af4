"""Seeded synthetic scenes where people have a look: clothes that stay with them.

For re-identification (`tracker.reid`): the walkers of `evaluation.scenes`,
the same occlusion and detector-noise model, but painted as clothed stick
figures (a textured shirt over torso and arms, textured trousers, a head),
under a light that slowly brightens and dims (+-15%), in scenarios where
identity must survive long gaps:

    leave_return   four people; three walk out of the picture, stay out
                   2-10 s, and come back on the same side.
    hide           walls; people stop behind one for 1.5-4 s, then walk on.
    alike          leave_return where three of the four are dressed
                   identically (one of them and the fourth person leave).
    dressed_crowd  ten distinctly dressed people walking about.

`returns(scene)` lists every reappearance after at least a second out of
view, for the re-identification rate. Images are 640 x 360 BGR; positions
image px, x right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from evaluation.scenes import IMAGE_SIZE_PX, DetectorNoise, Scene, Walker, bouncing_path, random_texture, \
    simulate_scene

DRESSED_SCENARIOS = ("leave_return", "hide", "alike", "dressed_crowd")
# Light: brightness gain 1 + LIGHT_SWING * sin(2 pi t / LIGHT_PERIOD_FRAMES).
LIGHT_SWING = 0.15
LIGHT_PERIOD_FRAMES = 240
FPS = 30.0
_WALL_WIDTH_PX = 90


@dataclass(frozen=True)
class Clothes:
    """Textures (H, W, 3) uint8 BGR, anchored at the mid-hip when painted."""

    shirt: np.ndarray
    trousers: np.ndarray
    skin_bgr: tuple[int, int, int]


def _hue_bgr(hue: float, saturation: float, value: float) -> np.ndarray:
    hsv = np.array([[[hue * 179, saturation * 255, value * 255]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.int16)


def _garment(rng: np.random.Generator, side: int, colour: np.ndarray) -> np.ndarray:
    """A garment texture: a colour, a pattern (plain, stripes or checks) and fine noise."""
    pattern = rng.integers(3)
    y, x = np.mgrid[:side, :side]
    period = int(rng.integers(6, 14))
    if pattern == 1:
        shade = ((y // period) % 2) * 2 - 1
    elif pattern == 2:
        shade = (((y // period) + (x // period)) % 2) * 2 - 1
    else:
        shade = np.zeros((side, side), np.int64)
    image = colour[None, None, :] + (shade[..., None] * int(rng.integers(15, 40)))
    image = image + random_texture(rng, side, side, cell=3).astype(np.int16) // 8 - 16
    return np.clip(image, 0, 255).astype(np.uint8)


def make_clothes(rng: np.random.Generator, side: int, hue: float) -> Clothes:
    shirt = _hue_bgr(hue, rng.uniform(0.5, 0.95), rng.uniform(0.45, 0.95))
    trousers = _hue_bgr(rng.uniform(0, 1), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.7))
    skin = tuple(int(v) for v in _hue_bgr(rng.uniform(0.03, 0.08), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.9)))
    return Clothes(_garment(rng, side, shirt), _garment(rng, side, trousers), skin)


class _DressedPainter:
    """Paints the background, the clothed people (back to front), the walls and the light."""

    def __init__(self, rng: np.random.Generator, walkers, clothes: dict[int, Clothes], walls) -> None:
        width, height = IMAGE_SIZE_PX
        self.background = random_texture(rng, height, width, cell=8, tint=(90, 100, 95))
        self.wall = random_texture(rng, height, width, cell=10, tint=(130, 135, 140))
        self.walkers, self.clothes, self.walls = walkers, clothes, walls

    def __call__(self, poses, depth, present, shake, frame_index) -> np.ndarray:
        image = self.background.copy()
        for index in np.argsort(depth):
            if present[index]:
                self._person(image, poses[index], self.walkers[index].height_px,
                             self.clothes[self.walkers[index].person_id])
        for x1, y1, x2, y2 in self.walls:
            image[int(y1):int(y2), int(x1):int(x2)] = self.wall[int(y1):int(y2), int(x1):int(x2)]
        gain = 1.0 + LIGHT_SWING * np.sin(2 * np.pi * frame_index / LIGHT_PERIOD_FRAMES)
        return cv2.convertScaleAbs(image, alpha=gain)

    @staticmethod
    def _person(image: np.ndarray, pose: np.ndarray, height_px: float, clothes: Clothes) -> None:
        width, height = IMAGE_SIZE_PX
        pad = int(0.1 * height_px) + 2
        left, top = np.floor(pose.min(axis=0)).astype(int) - pad
        right, bottom = np.ceil(pose.max(axis=0)).astype(int) + pad
        cl, ct, cr, cb = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
        if cr <= cl or cb <= ct:
            return
        local = np.rint((pose - [left, top]) * 4).astype(np.int32)  # 2 fractional bits for cv2
        shirt = np.zeros((bottom - top, right - left), np.uint8)
        trousers = np.zeros_like(shirt)
        limb = max(int(0.065 * height_px), 2)
        leg = max(int(0.08 * height_px), 2)
        torso = local[[5, 6, 12, 11]].copy()
        torso[[0, 3], 0] -= int(0.03 * height_px * 4)  # a little wider than the joints
        torso[[1, 2], 0] += int(0.03 * height_px * 4)
        cv2.fillConvexPoly(shirt, torso[np.argsort(np.arctan2(*(torso - torso.mean(0)).T[::-1]))], 255, cv2.LINE_8, 2)
        for a, b in ((5, 7), (7, 9), (6, 8), (8, 10)):
            cv2.line(shirt, tuple(local[a]), tuple(local[b]), 255, limb, cv2.LINE_8, 2)
        for a, b in ((11, 13), (13, 15), (12, 14), (14, 16), (11, 12)):
            cv2.line(trousers, tuple(local[a]), tuple(local[b]), 255, leg, cv2.LINE_8, 2)
        hips = pose[11:13].mean(axis=0)
        side = clothes.shirt.shape[0]
        u0, v0 = side // 2 + left - int(round(hips[0])), side // 2 + top - int(round(hips[1]))
        if u0 < 0 or v0 < 0 or u0 + (right - left) > side or v0 + (bottom - top) > side:
            return
        region = image[ct:cb, cl:cr]
        window = (slice(ct - top, cb - top), slice(cl - left, cr - left))
        texture_window = (slice(v0 + ct - top, v0 + cb - top), slice(u0 + cl - left, u0 + cr - left))
        for mask, texture in ((trousers, clothes.trousers), (shirt, clothes.shirt)):
            chosen = mask[window] > 0
            region[chosen] = texture[texture_window][chosen]
        head = pose[0] - [left, top] + [0, -0.02 * height_px]
        head_mask = np.zeros_like(shirt)
        cv2.circle(head_mask, tuple(np.rint(head * 4).astype(np.int32)), int(0.075 * height_px * 4), 255, -1,
                   cv2.LINE_8, 2)
        region[head_mask[window] > 0] = clothes.skin_bgr


def _walk(start_x: float, y: float, legs, num_frames: int) -> np.ndarray:
    """(T, 2) float32 path from start_x along a horizontal lane: `legs` are
    (frames, px per frame) in turn, the last one held to the end."""
    path = np.zeros((num_frames, 2), np.float32)
    x, t = float(start_x), 0
    for index, (frames, speed) in enumerate(legs):
        count = num_frames - t if index == len(legs) - 1 else min(frames, num_frames - t)
        path[t:t + count, 0] = x + speed * np.arange(count)
        x += speed * count
        t += count
    path[:, 1] = y
    return path


def _leave_and_return(rng, y: float, height: float, num_frames: int) -> np.ndarray:
    """Walk out of the nearer side, wait outside so the gap is 2-10 s, walk back in."""
    width = IMAGE_SIZE_PX[0]
    speed = rng.uniform(2.5, 4.0)
    direction = rng.choice([-1, 1])
    start = rng.uniform(0.3, 0.7) * width
    outside = (width + 0.4 * height) if direction > 0 else -0.4 * height
    out_frames = int(abs(outside - start) / speed)
    gap_frames = int(rng.uniform(2.0, 10.0) * FPS)
    return _walk(start, y, [(out_frames, direction * speed), (gap_frames, 0.0), (10 ** 6, -direction * speed)],
                 num_frames)


def _hide(rng, y: float, walls, num_frames: int) -> np.ndarray:
    """Walk through the walls, stopping 1.5-4 s behind each (while hidden)."""
    speed = rng.uniform(2.0, 3.5)
    direction = rng.choice([-1, 1])
    centres = sorted((x1 + x2) / 2 for x1, _, x2, _ in walls)[::direction]
    start = centres[0] - direction * rng.uniform(60, 260)
    legs, x = [], start
    for centre in centres:
        legs += [(int(abs(centre - x) / speed), direction * speed), (int(rng.uniform(1.5, 4.0) * FPS), 0.0)]
        x = centre
    legs.append((10 ** 6, direction * speed))
    return _walk(start, y, legs, num_frames)


def _script(name: str, rng: np.random.Generator, num_frames: int):
    """[(height px, path)], walls (x1, y1, x2, y2) and which people dress alike (person ID -> group)."""
    people, walls, alike = [], [], {}
    lanes = (110.0, 185.0, 255.0, 320.0)
    if name in ("leave_return", "alike"):
        leavers = (0, 2, 3) if name == "leave_return" else (0, 3)
        for lane, y in enumerate(lanes):
            height = rng.uniform(95, 130)
            if lane in leavers:
                path = _leave_and_return(rng, y, height, num_frames)
            else:
                path = bouncing_path((rng.uniform(80, 560), y), (rng.uniform(1.5, 3.0) * rng.choice([-1, 1]), 0),
                                     num_frames)
            people.append((height, path))
        if name == "alike":
            alike = {1: 0, 2: 0, 3: 0}
    elif name == "hide":
        walls = [(150.0, 0.0, 150.0 + _WALL_WIDTH_PX, 360.0), (420.0, 0.0, 420.0 + _WALL_WIDTH_PX, 360.0)]
        for y in lanes[:3]:
            people.append((rng.uniform(95, 130), _hide(rng, y, walls, num_frames)))
    elif name == "dressed_crowd":
        for _ in range(10):
            start = (rng.uniform(40, 600), rng.uniform(80, 300))
            velocity = (rng.uniform(2.0, 4.5) * rng.choice([-1, 1]), rng.uniform(-0.5, 0.5))
            people.append((rng.uniform(90, 140), bouncing_path(start, velocity, num_frames, low=(30, 80),
                                                               high=(610, 300))))
    else:
        raise ValueError(f"unknown scenario {name!r}; choose from {DRESSED_SCENARIOS}")
    return people, walls, alike


def make_dressed_scene(name: str, seed: int = 0, num_frames: int = 450, noise: DetectorNoise | None = None,
                       render: bool = True) -> Scene:
    """A seeded scenario of `DRESSED_SCENARIOS` (detections, ground truth and, with render, images)."""
    noise = noise or DetectorNoise()
    rng = np.random.default_rng([seed, 23])
    people, walls, alike = _script(name, rng, num_frames)
    walkers = [Walker(person_id, float(height), path, float(rng.uniform(0, 2 * np.pi)))
               for person_id, (height, path) in enumerate(people, start=1)]
    paint = None
    if render:
        dress_rng = np.random.default_rng([seed, 23, 1])
        offset = dress_rng.uniform(0, 1)
        side = int(max(walker.height_px for walker in walkers) * 2.4)
        clothes, groups = {}, {}
        for index, walker in enumerate(walkers):
            group = alike.get(walker.person_id)
            if group is not None and group in groups:
                clothes[walker.person_id] = groups[group]
                continue
            clothes[walker.person_id] = make_clothes(dress_rng, side, (offset + index / len(walkers)) % 1.0)
            if group is not None:
                groups[group] = clothes[walker.person_id]
        paint = _DressedPainter(dress_rng, walkers, clothes, walls)
    return simulate_scene(name, walkers, walls, 0.0, noise, rng, num_frames, paint)


@dataclass(frozen=True)
class Return:
    """A person back in the ground truth at `frame` after `gap` frames out of it."""

    person_id: int
    frame: int
    gap: int


def returns(scene: Scene, min_gap: int = int(FPS)) -> list[Return]:
    """Every reappearance of a person after at least min_gap frames out of the ground truth."""
    present = np.array([[person in frame.gt_ids for person in range(1, scene.num_people + 1)]
                        for frame in scene.frames])
    found = []
    for person, column in enumerate(present.T, start=1):
        seen = np.nonzero(column)[0]
        for before, after in zip(seen[:-1], seen[1:]):
            if after - before - 1 >= min_gap:
                found.append(Return(person, int(after), int(after - before - 1)))
    return found


def reidentified(scene: Scene, ids_per_frame: list[np.ndarray], settle_frames: int = 15) -> list[bool]:
    """For each of `returns(scene)`: does the person carry the ID they had before the gap?

    ids_per_frame: each frame's (N,) track IDs of its detections (-1 untracked).
    "Before": the last ID their detections had; "after": the ID of their first
    tracked detection at least settle_frames after the return (a tracker may
    recognise a person entering at the border only once more of them shows).
    A return whose person had no ID before counts as not re-identified.
    """
    outcome = []
    for item in returns(scene):
        before = after = -1
        for frame, ids in zip(scene.frames[:item.frame], ids_per_frame[:item.frame]):
            mine = ids[(frame.detection_gt_ids == item.person_id) & (ids >= 0)]
            before = int(mine[0]) if len(mine) else before
        for frame, ids in zip(scene.frames[item.frame + settle_frames:], ids_per_frame[item.frame + settle_frames:]):
            mine = ids[(frame.detection_gt_ids == item.person_id) & (ids >= 0)]
            if len(mine):
                after = int(mine[0])
                break
        outcome.append(before >= 0 and after == before)
    return outcome
