"""Appearance-aware re-identification: galleries that outlive their tracks.

Owned by `PoseTracker` when `TrackerOptions.reid` is not "off" and the frame
is given; with `frame=None` none of this runs and tracking is keypoint-only.

Per frame:

1. `encode`: an `Appearance` of every detection (`tracker.appearance`).
2. `association_similarity`: (T, N) appearance similarity of each track's
   gallery with each detection, which `association.associate` blends into the
   pose similarity of pairs the pose already allows (appearance re-orders
   candidates, it never makes a match on its own).
3. `reidentify`: queries are the detections about to start a track and the
   detections of young tracks (seen whole in fewer than `reid_window_frames`
   frames, and born less than `_YOUNG_AGE_FRAMES` ago: a person who came back
   half-visible, or whose first frames a false detection's track took, still
   gets the old ID once the whole body is seen); candidates are the lost
   tracks (LOST rows and the `GalleryMemory` of removed ones). A query takes a candidate's ID
   only when the candidate is within `reid_threshold`, every other gallery
   (other candidates and the tracks active in this frame: a look-alike in view
   makes the query ambiguous) is at least `reid_margin` further, no other
   query is as close to that candidate, and the gap and position are
   plausible (`reid_max_speed`). Active tracks are never candidates: a track
   is not in two places. A detection showing too few parts (coming in at
   the border, out from behind a wall) near where someone with a gallery was
   lost is held back (ID -1) for up to `reid_window_frames`, to be judged on
   a fuller view.
4. `update_galleries`: confident, unoccluded views (score >= min_score, at
   least `reid_min_parts` parts once the parts with a keypoint inside the box
   of a detection in front, with lower feet, are left out) join the track's
   nearest prototype (running mean) or start a new one (at most `reid_prototypes`).
5. `remember`: confirmed tracks matched at least `_MIN_HITS_TO_REMEMBER`
   times and removed after `max_age` keep their galleries in the
   memory for `reid_memory_s` seconds (at most `reid_max_galleries` of them,
   the oldest dropped first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracker.appearance import Appearance, AppearanceEncoder, appearance_distance
from tracker.options import TrackerOptions
from tracker.similarity import iou_matrix
from tracker.tracks import CONFIRMED, LOST, TrackTable

# A one-part view (a network's) is occluded when a detection in front covers more than this share of its box.
_MAX_COVERED = 0.15
# Views merged into one prototype part at most count this many: the mean follows slow changes (lighting, turning).
_MAX_VIEW_WEIGHT = 30.0
# A track's gallery considers every _VIEW_EVERY-th detection of it (about 10 views a second at 30 fps).
_VIEW_EVERY = 3
# Tracks matched fewer times are not remembered (mostly false detections; a glimpse is no identity).
_MIN_HITS_TO_REMEMBER = 5
# A track older than this (frames) is not young any more, even if it was never seen whole.
_YOUNG_AGE_FRAMES = 90
# A held-back detection (`Reidentifier._hold_partial_views`) is followed to the next frame at this box IoU.
_HELD_IOU = 0.3
# A view closer than this share of reid_threshold to a prototype is merged into it rather than starting a new one.
_MERGE_SHARE = 0.5


def _box_centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


def gallery_distance(features: np.ndarray, weights: np.ndarray, appearance: Appearance,
                     distance_scale: float) -> np.ndarray:
    """(T, N) float32: the nearest prototype of each of T galleries ((T, G, P, F)
    features, (T, G, P) weights) to each of N descriptors; NaN where nothing is comparable."""
    if features.shape[0] == 0 or len(appearance) == 0:
        return np.full((features.shape[0], len(appearance)), np.nan, np.float32)
    gallery_count, prototypes = features.shape[:2]
    flat = appearance_distance(features.reshape(gallery_count * prototypes, *features.shape[2:]),
                               weights.reshape(gallery_count * prototypes, -1) > 0, appearance.features,
                               appearance.seen, distance_scale)
    distance = flat.reshape(gallery_count, prototypes, -1)
    nearest = np.where(np.isnan(distance), np.inf, distance).min(axis=1)
    return np.where(np.isinf(nearest), np.nan, nearest).astype(np.float32)


def merge_views(features: np.ndarray, weights: np.ndarray, views: Appearance, distance_scale: float,
                merge_distance: float) -> None:
    """Add one view per gallery (in place): R galleries (R, G, P, F), (R, G, P), R views.

    The view joins its nearest prototype when within merge_distance, else an
    empty prototype, else (all full) the nearest one, or the fullest when it
    shares no part with any; per part a running mean over at most
    `_MAX_VIEW_WEIGHT` views."""
    count = len(views)
    if count == 0:
        return
    # (R, G) distance of each view to its own gallery's prototypes.
    difference = features - views.features[:, None]
    part_distance = np.sqrt(np.einsum("rgpf,rgpf->rgp", difference, difference))
    shared = (weights > 0) & views.seen[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = np.where(shared, part_distance, 0.0).sum(axis=2) / (shared.sum(axis=2) * distance_scale)
    distance = np.where(np.isnan(distance), np.inf, distance)
    nearest = distance.argmin(axis=1)
    nearest_distance = distance[np.arange(count), nearest]
    empty = weights.sum(axis=2) == 0  # (R, G)
    first_empty = empty.argmax(axis=1)
    fullest = weights.sum(axis=2).argmax(axis=1)
    slot = np.where(nearest_distance <= merge_distance, nearest,
                    np.where(empty.any(axis=1), first_empty, np.where(np.isfinite(nearest_distance), nearest, fullest)))
    rows = np.arange(count)
    old_weight = weights[rows, slot]  # (R, P)
    new_weight = np.where(views.seen, np.minimum(old_weight + 1.0, _MAX_VIEW_WEIGHT), old_weight)
    step = np.where(views.seen, 1.0 / np.maximum(new_weight, 1.0), 0.0)[..., None]
    features[rows, slot] += (views.features - features[rows, slot]) * step
    weights[rows, slot] = new_weight


@dataclass
class GalleryMemory:
    """Galleries of removed tracks (M entries), for re-identification after long gaps.

    ids: (M,) int64 track IDs. features: (M, G, P, F), weights: (M, G, P) float32.
    last_frame: (M,) int64 frame count when each was last seen. centres: (M, 2)
    float32 px box centre then, net of camera motion. heights: (M,) float32 px box height.
    """

    ids: np.ndarray
    features: np.ndarray
    weights: np.ndarray
    last_frame: np.ndarray
    centres: np.ndarray
    heights: np.ndarray

    @classmethod
    def empty(cls, gallery_shape: tuple[int, int, int]) -> "GalleryMemory":
        return cls(np.zeros(0, np.int64), np.zeros((0, *gallery_shape), np.float32),
                   np.zeros((0, *gallery_shape[:2]), np.float32), np.zeros(0, np.int64),
                   np.zeros((0, 2), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids, features, weights, last_frame, centres, heights, max_count: int) -> None:
        """Append entries; beyond max_count the least recently seen are dropped."""
        self.ids = np.concatenate([self.ids, ids])
        self.features = np.concatenate([self.features, features])
        self.weights = np.concatenate([self.weights, weights])
        self.last_frame = np.concatenate([self.last_frame, last_frame])
        self.centres = np.concatenate([self.centres, centres])
        self.heights = np.concatenate([self.heights, heights])
        if len(self) > max_count:
            self.keep(np.sort(np.argsort(-self.last_frame, kind="stable")[:max_count]))

    def keep(self, indices: np.ndarray) -> None:
        for name in ("ids", "features", "weights", "last_frame", "centres", "heights"):
            setattr(self, name, getattr(self, name)[indices])

    def forget_before(self, frame: int) -> None:
        """Drop the entries last seen before `frame`."""
        if len(self) and self.last_frame.min() < frame:
            self.keep((self.last_frame >= frame).nonzero()[0])


@dataclass(frozen=True)
class Reidentified:
    """What `Reidentifier.reidentify` decided (each array (R,), R re-identified detections).

    born_columns, born_ids: detections about to start a track that start it with an old ID instead.
    young_rows, young_ids: young tracks that take an old ID.
    gallery_features, gallery_weights: the galleries they take, born ones first.
    retired_rows: LOST rows whose ID now lives on in another row (removed, not remembered).
    """

    born_columns: np.ndarray
    born_ids: np.ndarray
    young_rows: np.ndarray
    young_ids: np.ndarray
    gallery_features: np.ndarray
    gallery_weights: np.ndarray
    retired_rows: np.ndarray


class Reidentifier:
    """Appearance state of one `PoseTracker`: the encoder, the options, and the memory."""

    def __init__(self, encoder: AppearanceEncoder, options: TrackerOptions) -> None:
        self.encoder = encoder
        self.options = options
        self.gallery_shape = (options.reid_prototypes, encoder.num_parts, encoder.num_features)
        self.memory = GalleryMemory.empty(self.gallery_shape)
        self._memory_frames = int(round(options.reid_memory_s * options.fps))
        self._window = options.reid_window_frames
        # A network's descriptor is one part: it cannot show three.
        self._min_parts = min(options.reid_min_parts, encoder.num_parts)
        self._held_boxes = np.zeros((0, 4), np.float32)  # detections held back last frame (`_hold_partial_views`)
        self._held_frames = np.zeros(0, np.int64)

    def reset(self) -> None:
        self.memory = GalleryMemory.empty(self.gallery_shape)
        self._held_boxes, self._held_frames = self._held_boxes[:0], self._held_frames[:0]

    def encode(self, frame: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray) -> Appearance:
        return self.encoder.encode(frame, keypoints, boxes, self.options.keypoint_threshold)

    def association_similarity(self, table: TrackTable, appearance: Appearance, rows: np.ndarray,
                               columns: np.ndarray) -> np.ndarray:
        """(R, C) float32 appearance similarity 1 - distance in [0, 1] of the
        tracks at `rows` and the detections at `columns`, NaN where not comparable."""
        distance = gallery_distance(table.gallery_features[rows], table.gallery_weights[rows],
                                    appearance.take(columns), self.encoder.distance_scale)
        return 1.0 - np.minimum(distance, 1.0)

    def reidentify(self, table: TrackTable, appearance: Appearance, boxes: np.ndarray, scores: np.ndarray,
                   matched_rows: np.ndarray, matched_columns: np.ndarray, starts: np.ndarray, frame: int,
                   camera_offset: np.ndarray) -> Reidentified | None:
        """Step 3 of the module docstring; None when nothing was re-identified.

        boxes: (N, 4) xyxy px, scores: (N,) of the detections; starts: (N,) bool,
        the detections about to start tracks, cleared (in place) for those held
        back (`_hold_partial_views`); frame: the frame count (1 = first).
        """
        options = self.options
        self.memory.forget_before(frame - self._memory_frames)
        young = ((table.full_views[matched_rows] < self._window) & (table.age[matched_rows] < _YOUNG_AGE_FRAMES)
                 & (table.ids[matched_rows] >= 0))
        free = np.ones(len(table), bool)
        free[matched_rows] = False
        lost_rows = (free & (table.state == LOST) & (table.ids >= 0)).nonzero()[0]
        self._hold_partial_views(table, lost_rows, starts, appearance, boxes, frame, camera_offset)
        if not (starts.any() or young.any()):  # the usual frame: nobody new
            return None
        query_columns = np.concatenate([starts.nonzero()[0], matched_columns[young]]).astype(np.int64)
        query_rows = np.concatenate([np.full(int(starts.sum()), -1, np.int64), matched_rows[young]])
        good = ((appearance.seen[query_columns].sum(axis=1) >= self._min_parts)
                & (scores[query_columns] >= options.min_score))
        query_columns, query_rows = query_columns[good], query_rows[good]
        if len(query_columns) == 0 or len(lost_rows) + len(self.memory) == 0:
            return None
        queries = appearance.take(query_columns)
        scale = self.encoder.distance_scale
        memory = self.memory
        # Candidates: LOST rows, then memory entries.
        candidate_distance = np.concatenate([
            gallery_distance(table.gallery_features[lost_rows], table.gallery_weights[lost_rows], queries, scale),
            gallery_distance(memory.features, memory.weights, queries, scale)]).T  # (Q, C)
        active_distance = gallery_distance(table.gallery_features[matched_rows], table.gallery_weights[matched_rows],
                                           queries, scale).T  # (Q, A)
        own = matched_rows[None, :] == query_rows[:, None]  # a young query is not its own rival
        active_distance = np.where(own | np.isnan(active_distance), np.inf, active_distance)
        candidate_distance = np.where(np.isnan(candidate_distance), np.inf, candidate_distance)
        plausible = self._plausible(table, lost_rows, boxes[query_columns], frame, camera_offset)

        best = np.where(plausible, candidate_distance, np.inf).argmin(axis=1)
        rows = np.arange(len(query_columns))
        best_distance = np.where(plausible[rows, best], candidate_distance[rows, best], np.inf)
        others = candidate_distance.copy()
        others[rows, best] = np.inf
        second = np.minimum(others.min(axis=1, initial=np.inf), active_distance.min(axis=1, initial=np.inf))
        accepted = best_distance <= options.reid_threshold  # (so best_distance is finite below)
        accepted &= second >= np.where(accepted, best_distance, 0.0) + options.reid_margin
        # No other query may come near the same candidate.
        to_best = candidate_distance[:, best]  # (Q, Q): query i to query j's best
        to_best[rows, rows] = np.inf
        accepted &= (to_best >= np.where(accepted, best_distance, 0.0)[None, :] + options.reid_margin).all(axis=0)
        if not accepted.any():
            return None
        chosen, winners = best[accepted], query_rows[accepted]
        columns = query_columns[accepted]
        from_rows = chosen < len(lost_rows)
        gallery_rows = lost_rows[chosen[from_rows]]
        memory_index = chosen[~from_rows] - len(lost_rows)
        ids = np.empty(len(chosen), np.int64)
        ids[from_rows], ids[~from_rows] = table.ids[gallery_rows], memory.ids[memory_index]
        features = np.empty((len(chosen), *self.gallery_shape), np.float32)
        weights = np.empty((len(chosen), *self.gallery_shape[:2]), np.float32)
        features[from_rows], weights[from_rows] = table.gallery_features[gallery_rows], table.gallery_weights[
            gallery_rows]
        features[~from_rows], weights[~from_rows] = memory.features[memory_index], memory.weights[memory_index]
        remaining = np.ones(len(memory), bool)
        remaining[memory_index] = False
        memory.keep(remaining.nonzero()[0])
        born = winners < 0
        order = np.concatenate([born.nonzero()[0], (~born).nonzero()[0]])
        return Reidentified(born_columns=columns[born], born_ids=ids[born], young_rows=winners[~born],
                            young_ids=ids[~born], gallery_features=features[order],
                            gallery_weights=weights[order], retired_rows=gallery_rows)

    def _plausible(self, table: TrackTable, lost_rows: np.ndarray, boxes: np.ndarray, frame: int,
                   camera_offset: np.ndarray) -> np.ndarray:
        """(Q, C) bool: could the people in the (Q, 4) boxes be the candidates (the
        LOST rows, then the memory entries), given how far they are from where
        each was last seen and for how long (reid_max_speed)?"""
        memory, options = self.memory, self.options
        gap = np.concatenate([table.missed[lost_rows] + 1, frame - memory.last_frame]).astype(np.float32)
        last_centres = np.concatenate([_box_centres(table.boxes[lost_rows]) - table.camera_at_update[lost_rows],
                                       memory.centres])
        heights = np.concatenate([table.boxes[lost_rows, 3] - table.boxes[lost_rows, 1], memory.heights])
        reach = heights * (1.0 + options.reid_max_speed * gap / options.fps)  # (C,) px
        centres = _box_centres(boxes) - camera_offset  # (Q, 2), net of camera motion
        return np.linalg.norm(centres[:, None, :] - last_centres[None], axis=2) <= reach[None]

    def _hold_partial_views(self, table: TrackTable, lost_rows: np.ndarray, starts: np.ndarray,
                            appearance: Appearance, boxes: np.ndarray, frame: int, camera_offset: np.ndarray) -> None:
        """While somebody who could be re-identified is lost, a detection near
        enough to them (`_plausible`) showing fewer than reid_min_parts parts
        (a person coming in at the border or out from behind a wall) does not
        start a track yet: it gets ID -1 for up to reid_window_frames frames in
        a row (followed by box IoU >= _HELD_IOU), so the person is judged on a
        whole view instead of first getting a new ID. Clears `starts` where held."""
        partial = (starts & (appearance.seen.sum(axis=1) < self._min_parts)).nonzero()[0]
        if len(partial):
            lost_rows = lost_rows[table.gallery_weights[lost_rows].sum(axis=(1, 2)) > 0]
            near = self._plausible(table, lost_rows, boxes[partial], frame, camera_offset).any(axis=1)
            partial = partial[near]
        if len(partial) == 0:
            self._held_boxes, self._held_frames = self._held_boxes[:0], self._held_frames[:0]
            return
        frames = np.ones(len(partial), np.int64)
        if len(self._held_boxes):
            overlap = iou_matrix(boxes[partial], self._held_boxes)  # (H', H)
            best = overlap.argmax(axis=1)
            followed = overlap[np.arange(len(partial)), best] >= _HELD_IOU
            frames[followed] += self._held_frames[best[followed]]
        held = frames <= self._window
        starts[partial[held]] = False
        self._held_boxes, self._held_frames = boxes[partial[held]].copy(), frames[held]

    def apply(self, table: TrackTable, decision: Reidentified, born_rows: np.ndarray) -> None:
        """Give the re-identified rows (born_rows: the rows started for
        decision.born_columns) their old IDs and galleries, confirmed."""
        rows = np.concatenate([born_rows, decision.young_rows]).astype(np.int64)
        table.ids[rows] = np.concatenate([decision.born_ids, decision.young_ids])
        table.state[rows] = CONFIRMED
        table.gallery_features[rows] = decision.gallery_features
        table.gallery_weights[rows] = decision.gallery_weights
        table.full_views[rows] = self._window

    def update_galleries(self, table: TrackTable, rows: np.ndarray, columns: np.ndarray, appearance: Appearance,
                         keypoints: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> None:
        """Step 4: add the confident, unoccluded views of the detections at
        `columns` ((N, K, 3) keypoints, (N, 4) boxes, (N,) scores) to the tracks at `rows`."""
        options = self.options
        whole = (appearance.seen[columns].sum(axis=1) >= self._min_parts) & (scores[columns] >= options.min_score)
        table.full_views[rows[whole]] += 1
        # Every _VIEW_EVERY-th hit is a view (the first one included): neighbouring frames look alike.
        good = whole & ((table.hits[rows] % _VIEW_EVERY == 1) | (_VIEW_EVERY == 1))
        rows, columns = rows[good], columns[good]
        views = appearance.take(columns)
        if len(boxes) > 1 and len(rows):
            views, clear = self._unoccluded(views, keypoints, boxes, columns)
            rows, columns, views = rows[clear], columns[clear], views.take(clear.nonzero()[0])
        if len(rows):
            features, weights = table.gallery_features[rows], table.gallery_weights[rows]
            merge_views(features, weights, views, self.encoder.distance_scale, _MERGE_SHARE * options.reid_threshold)
            table.gallery_features[rows], table.gallery_weights[rows] = features, weights

    def _unoccluded(self, views: Appearance, keypoints: np.ndarray, boxes: np.ndarray,
                    columns: np.ndarray) -> tuple[Appearance, np.ndarray]:
        """The views without the parts a person in front may hide, and (V,) bool:
        which still show enough parts. A part is hidden when one of its keypoints
        lies in the box of a detection in front (lower feet), since an estimator
        may be confident about a joint it cannot see; an encoder without parts
        along the skeleton (one part, the box) loses the view when a box in front
        covers over `_MAX_COVERED` of its box."""
        part_keypoints = getattr(self.encoder, "part_keypoints", None)
        if part_keypoints is None:
            return views, covered_share(boxes, columns) <= _MAX_COVERED
        hidden = in_front_boxes(keypoints[columns], boxes, columns)  # (V, K)
        seen = views.seen & ~((hidden.astype(np.float32) @ part_keypoints.T) > 0)
        return Appearance(views.features, seen), seen.sum(axis=1) >= self._min_parts

    def remember(self, table: TrackTable, rows: np.ndarray, frame: int) -> None:
        """Step 5: keep the galleries of the confirmed tracks at `rows`, about to be removed."""
        rows = rows[(table.ids[rows] >= 0) & (table.hits[rows] >= _MIN_HITS_TO_REMEMBER)
                    & (table.gallery_weights[rows].sum(axis=(1, 2)) > 0)]
        if len(rows) == 0:
            return
        boxes = table.boxes[rows]
        self.memory.add(table.ids[rows], table.gallery_features[rows], table.gallery_weights[rows],
                        frame - table.missed[rows].astype(np.int64), _box_centres(boxes) - table.camera_at_update[rows],
                        boxes[:, 3] - boxes[:, 1], self.options.reid_max_galleries)


def in_front_boxes(keypoints: np.ndarray, boxes: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(V, K) bool: keypoints (V, K, >=2) of the detections at `columns` of the
    xyxy boxes (N, 4) that lie inside the box of a detection in front of theirs
    (its bottom edge lower in the image)."""
    x, y = keypoints[..., 0, None], keypoints[..., 1, None]  # (V, K, 1)
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])  # (V, K, N)
    in_front = boxes[None, :, 3] > boxes[columns, 3][:, None]  # (V, N), never itself
    return (inside & in_front[:, None, :]).any(axis=2)


def covered_share(boxes: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(I,) float32: the largest share of each box at `indices` of the xyxy
    boxes (N, 4) that a box in front of it covers. In front: its bottom edge
    (the feet) is lower in the image; a box behind covers nothing of a person's own pixels."""
    chosen = boxes[indices]
    low = np.maximum(chosen[:, None, :2], boxes[None, :, :2])
    high = np.minimum(chosen[:, None, 2:], boxes[None, :, 2:])
    overlap = np.prod(np.clip(high - low, 0.0, None), axis=2)  # (I, N)
    overlap[boxes[None, :, 3] <= chosen[:, None, 3]] = 0.0  # itself included
    area = np.maximum(np.prod(chosen[:, 2:] - chosen[:, :2], axis=1), 1e-6)
    return (overlap.max(axis=1) / area).astype(np.float32)
