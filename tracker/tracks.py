"""The track table: one row per live track, and its lifecycle.

Lifecycle of a track (`TrackState`):

    birth     an unmatched confident detection starts a TENTATIVE track (CONFIRMED at
              once when min_hits <= 1); a confirmed track gets the next ID.
    confirm   a TENTATIVE track matched `min_hits` times becomes CONFIRMED and gets its ID;
              a LOST track that is matched again is CONFIRMED again, with its old ID.
    coast     a confirmed track without a match is LOST: kept, and predicted forward,
              for up to `max_age` frames.
    death     a LOST track older than that, or a TENTATIVE one that missed once, is
              REMOVED: its row is dropped.

IDs come from a counter owned by the table: they start at 1 and are never
reused; a new table (the tracker's `reset()`) starts again at 1.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

import numpy as np

# Shared empty row index: nobody may write into it.
NO_ROWS = np.zeros((0,), np.int64)
NO_ROWS.flags.writeable = False


class TrackState(enum.IntEnum):
    """TENTATIVE: born but not yet `min_hits` hits (no ID shown yet).
    CONFIRMED: has an ID and was seen (detected or flow-recovered) this frame.
    LOST: has an ID, missed this frame, still kept for re-association.
    REMOVED: gone for good (only seen in logs: removed tracks leave `tracks`)."""

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2
    REMOVED = 3


# Plain ints for array comparisons: comparing a numpy array with an IntEnum
# member goes through a slow conversion (several microseconds a call).
TENTATIVE, CONFIRMED, LOST, REMOVED = (int(state) for state in TrackState)


@dataclass(frozen=True)
class Track:
    """A read-only snapshot of one live track.

    track_id: the ID, or -1 while TENTATIVE.
    keypoints: (K, 3) float32 [x, y, confidence] px, the last observed pose (raw).
    box: (4,) float32 xyxy px.
    score: detection score of the last observation.
    age: frames since birth, counting the birth frame.
    hits: frames the track was matched to a detection.
    time_since_update: frames since the last detection or flow-recovered pose.
    state: TrackState.
    velocity: (2,) float32 px per frame, net of camera motion.
    """

    track_id: int
    keypoints: np.ndarray
    box: np.ndarray
    score: float
    age: int
    hits: int
    time_since_update: int
    state: TrackState
    velocity: np.ndarray


@dataclass
class TrackTable:
    """Struct of arrays, one row per live track (T rows), so updates are vectorised.

    ids: (T,) int64, -1 while TENTATIVE.
    keypoints: (T, K, 3) float32 [x, y, confidence] px, the last observed pose.
    boxes: (T, 4) float32 xyxy px; scores: (T,) float32 detection score.
    velocity: (T, 2) float32 px/frame net of camera motion; velocity_known: (T,) bool.
    image_motion: (T, 2) float32 px/frame, the slow average of the track's observed
        image displacement (camera motion included), which bounds the velocity.
    age, hits, missed (frames since the last observation), propagated (flow-recovered
        frames in a row): (T,) int32. state: (T,) int8 `TrackState` values.
    smooth_value: (T, K, 2) float32 px, One-Euro state (camera-compensated);
        smooth_derivative: (T, K, 2) float32 px/s.
    camera_at_update: (T, 2) float32 px, the camera offset when the track was last observed.
    gallery_features: (T, G, P, F) float32 appearance prototypes, gallery_weights: (T, G, P)
        float32 views merged into each prototype's parts (0: empty), `tracker.reid`;
        G = P = F = 0 when re-identification is off.
    full_views: (T,) int32 frames the track was seen with enough body parts to be
        re-identified (`tracker.reid`: a young track may still be a returning person).
    next_id: the ID the next confirmed track gets (not a column).
    """

    ids: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    velocity: np.ndarray
    velocity_known: np.ndarray
    image_motion: np.ndarray
    age: np.ndarray
    hits: np.ndarray
    missed: np.ndarray
    propagated: np.ndarray
    state: np.ndarray
    smooth_value: np.ndarray
    smooth_derivative: np.ndarray
    camera_at_update: np.ndarray
    gallery_features: np.ndarray
    gallery_weights: np.ndarray
    full_views: np.ndarray
    next_id: int = 1

    @classmethod
    def empty(cls, num_keypoints: int, gallery_shape: tuple[int, int, int] = (0, 0, 0)) -> "TrackTable":
        """No rows; gallery_shape: (G, P, F) of the appearance galleries (`tracker.reid`)."""
        return cls.new(np.zeros((0, num_keypoints, 3), np.float32), np.zeros((0, 4), np.float32),
                       np.zeros((0,), np.float32), gallery_shape)

    @classmethod
    def new(cls, keypoints: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
            gallery_shape: tuple[int, int, int] = (0, 0, 0)) -> "TrackTable":
        """Rows for new TENTATIVE tracks (age 0, one hit) of (N, K, 3) poses, with empty galleries."""
        n, k = keypoints.shape[:2]
        return cls(
            ids=np.full(n, -1, np.int64),
            keypoints=keypoints.astype(np.float32, copy=True),
            boxes=boxes.astype(np.float32, copy=True),
            scores=scores.astype(np.float32, copy=True),
            velocity=np.zeros((n, 2), np.float32),
            velocity_known=np.zeros(n, bool),
            image_motion=np.zeros((n, 2), np.float32),
            age=np.zeros(n, np.int32),
            hits=np.ones(n, np.int32),
            missed=np.zeros(n, np.int32),
            propagated=np.zeros(n, np.int32),
            state=np.full(n, TENTATIVE, np.int8),
            smooth_value=keypoints[..., :2].astype(np.float32, copy=True),
            smooth_derivative=np.zeros((n, k, 2), np.float32),
            camera_at_update=np.zeros((n, 2), np.float32),
            gallery_features=np.zeros((n, *gallery_shape), np.float32),
            gallery_weights=np.zeros((n, *gallery_shape[:2]), np.float32),
            full_views=np.zeros(n, np.int32),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def snapshots(self) -> list[Track]:
        return [
            Track(int(self.ids[i]), self.keypoints[i].copy(), self.boxes[i].copy(), float(self.scores[i]),
                  int(self.age[i]), int(self.hits[i]), int(self.missed[i]), TrackState(int(self.state[i])),
                  self.velocity[i].copy())
            for i in range(len(self))
        ]

    # ------------------------------------------------------------- lifecycle

    def start(self, keypoints: np.ndarray, boxes: np.ndarray, scores: np.ndarray, camera_offset: np.ndarray,
              confirmed: bool) -> np.ndarray:
        """Birth: append tracks for (N, K, 3) poses; confirmed ones get IDs at once. Returns their (N,) rows."""
        if len(keypoints) == 0:
            return NO_ROWS
        first_row = len(self)
        born = TrackTable.new(keypoints, boxes, scores, self.gallery_features.shape[1:])
        born.age[:] = 1
        born.camera_at_update[:] = camera_offset
        for name in _COLUMNS:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(born, name)]))
        rows = np.arange(first_row, len(self), dtype=np.int64)
        if confirmed:
            self.assign_ids(rows)
            self.state[rows] = CONFIRMED
        return rows

    def confirm_matched(self, rows: np.ndarray, min_hits: int, every_row: bool) -> None:
        """Confirm: the matched `rows` (hits already counted) are CONFIRMED; a TENTATIVE
        one reaching `min_hits` gets its ID. every_row: `rows` are all the rows."""
        if min_hits <= 1:  # tracks are born confirmed: a matched one is (again) confirmed
            self.state[slice(None) if every_row else rows] = CONFIRMED
            return
        state = self.state[rows]
        promote = (state == TENTATIVE) & (self.hits[rows] >= min_hits)
        self.assign_ids(rows[promote])
        state = np.where(state == LOST, CONFIRMED, state)
        state[promote] = CONFIRMED
        self.state[rows] = state

    def assign_ids(self, rows: np.ndarray) -> None:
        """Give the tracks at `rows` the next IDs, in row order."""
        count = len(rows)
        if count:
            self.ids[rows] = np.arange(self.next_id, self.next_id + count, dtype=np.int64)
            self.next_id += count

    def mark_missed(self, track_free: np.ndarray, max_age: int) -> np.ndarray:
        """Coast: the unmatched tracks (`track_free`, (T,) bool) are LOST, or REMOVED when
        TENTATIVE or missing more than `max_age` frames; returns the rows to remove."""
        free_rows = track_free.nonzero()[0]
        missed = self.missed[free_rows] + 1
        self.missed[free_rows] = missed
        gone = (self.state[free_rows] == TENTATIVE) | (missed > max_age)
        self.state[free_rows] = np.where(gone, REMOVED, LOST)
        return free_rows[gone]

    def remove(self, rows: np.ndarray) -> None:
        """Death: drop the tracks at `rows` (their IDs are never given again)."""
        if len(rows):
            keep = np.ones(len(self), bool)
            keep[rows] = False
            for name in _COLUMNS:
                setattr(self, name, getattr(self, name)[keep])


# The per-track array fields of `TrackTable` (everything but the ID counter).
_COLUMNS = tuple(item.name for item in dataclasses.fields(TrackTable) if item.name != "next_id")
