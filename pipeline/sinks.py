"""Result writers: pose JSON, CSV, COCO results, PoseTrack predictions, annotated video.

Every sink has `write(result: FrameResult)` and `close(complete: bool)`. It
writes through the one atomic writer of `core.io`: to a temporary name next to
the final one (`<name>.json.part`, `<name>.part.mp4`: OpenCV picks the
container from the extension), renamed to the final name only in
`close(complete=True)` and only when every write, the flush and the close
succeeded (a video must read back with every frame), so a file with its final
name is always whole. A failed write raises an OSError naming the file ("no
space left on <path>" on a full disk) and removes that `.part` file.
`close(complete=False)` (a stop, an error, Ctrl-C) closes what was written and
leaves it under the temporary name.

The JSON, CSV and COCO writers stream: each frame is written when it arrives.
The PoseTrack writer keeps the video's poses and writes them at the end (the
format is one document). Formats are described in docs/output_format.md.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.io import AtomicTextFile, AtomicVideoWriter
from core.posetrack_format import keypoint_layout_of, posetrack17_prediction_document, posetrack18_prediction_document
from core.types import Frame, FrameResult

logger = logging.getLogger(__name__)

POSES_FORMAT = "hrtrack.poses"
POSES_FORMAT_VERSION = 1


def _round(values: np.ndarray, digits: int) -> list:
    return np.round(np.asarray(values, np.float64), digits).tolist()


def person_score(keypoint_scores: np.ndarray) -> float:
    """One score per pose: the mean of its keypoint scores."""
    return float(np.mean(keypoint_scores)) if np.size(keypoint_scores) else 0.0


def image_id(frame: Frame) -> int:
    """The image id written for a frame: a numeric file stem (COCO names) or else the frame index."""
    if frame.path is not None:
        stem = Path(frame.path).stem
        if stem.isdigit():
            return int(stem)
    return int(frame.index)


class _TextSink:
    """A text file streamed through `core.io.AtomicTextFile`, renamed when complete."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self._file: AtomicTextFile | None = AtomicTextFile(self.path, newline="")
        self.part = self._file.part
        self.frames_written = 0

    def _finish(self, complete: bool) -> None:
        """Write whatever closes the document (subclasses)."""

    def close(self, complete: bool) -> None:
        out = self._file
        if out is None:
            return
        try:
            self._finish(complete)
        except BaseException:
            out.abandon(keep=False)
            raise
        finally:
            self._file = None
        if complete:
            out.commit()
        else:
            out.abandon(keep=True)
            logger.warning("%s left incomplete (%d frames)", self.part, self.frames_written)


class JsonPosesSink(_TextSink):
    """The documented per-frame pose JSON (`hrtrack.poses`), one entry per frame, people or not.

    Args:
        path: final file name (`.json`).
        source: the input, recorded in the header.
        keypoint_names: names of the K keypoints, in array order.
        skeleton: 0-based (a, b) keypoint pairs, for readers that draw.
        fps: frame rate of the input (0 when unknown).
        coverage: called at the close; returns what the source could not
            deliver: {"frames_decoded", "frames_announced"} for a truncated
            video (the file then says `"complete": false`), {"skipped_frames":
            [paths]} for unreadable images; {} when the whole input was read.
        profile: a `pipeline.profile.PipelineProfile` filled by the pipeline
            (`--profile`); its summary goes into the file's "profile" field.
        run_info: called at the close; {field: value} to record after the frames (e.g. "pose_backend":
            which backend ran the network, and its agreement with eager fp32).
        max_frames: the `--max-frames` of a trial on a file: when the run
            reached it, the file says `"max_frames": N, "complete": false` (a
            partial trial, not the whole input).
    """

    def __init__(self, path, *, source: str = "", keypoint_names: Sequence[str] = (),
                 skeleton: Sequence[tuple[int, int]] = (), fps: float = 0.0,
                 coverage: Callable[[], dict] | None = None, profile=None,
                 run_info: Callable[[], dict] | None = None, max_frames: int | None = None) -> None:
        super().__init__(path)
        self._coverage = coverage
        self._run_info = run_info
        self._max_frames = max_frames
        self._profile = profile
        self._header = {"format": POSES_FORMAT, "version": POSES_FORMAT_VERSION, "source": str(source),
                        "fps": float(fps), "keypoint_names": list(keypoint_names),
                        "skeleton": [list(map(int, edge)) for edge in skeleton]}
        self._dropped_frames = 0
        self._started = False

    def _start(self, width: int | None, height: int | None) -> None:
        header = dict(self._header, width=width, height=height)
        # The header is written with its closing brace removed so "frames" can stream after it.
        self._file.write(json.dumps(header)[:-1] + ', "frames": [\n')
        self._started = True

    def write(self, result: FrameResult) -> None:
        if not self._started:
            width, height = result.frame.size_px
            self._start(width, height)
        poses = result.poses
        people = []
        with_scores = poses.keypoints_with_scores()  # (N, K, 3) x, y px, score
        for person in range(len(poses)):
            people.append({
                "track_id": int(poses.track_ids[person]),
                "box": _round(poses.boxes[person], 2),
                "box_score": round(float(poses.box_scores[person]), 4),
                "score": round(person_score(poses.scores[person]), 4),
                "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                              for x, y, s in with_scores[person]],
            })
        entry = {"frame_index": int(result.frame.index), "timestamp_s": round(float(result.frame.timestamp_s), 6),
                 "image_path": result.frame.path, "people": people,
                 "timings_ms": {name: round(1000 * seconds, 3) for name, seconds in result.timings_s.items()}}
        self._file.write((",\n" if self.frames_written else "") + json.dumps(entry))
        self.frames_written += 1
        self._dropped_frames = int(result.dropped_frames)

    def _finish(self, complete: bool) -> None:
        if not self._started:
            self._start(None, None)
        coverage = self._coverage() if self._coverage is not None else {}
        if self._profile is not None:
            coverage = dict(coverage, profile=self._profile.as_dict())
        if self._run_info is not None:
            coverage = dict(coverage, **self._run_info())
        if self._max_frames is not None and self.frames_written >= self._max_frames:
            coverage = dict(coverage, max_frames=self._max_frames)
        whole = complete and "frames_announced" not in coverage and "max_frames" not in coverage
        extra = "".join(f", {json.dumps(key)}: {json.dumps(value)}" for key, value in coverage.items())
        self._file.write(f'\n], "num_frames": {self.frames_written}, "dropped_frames": {self._dropped_frames}'
                         f'{extra}, "complete": {json.dumps(bool(whole))}}}\n')


class CsvPosesSink(_TextSink):
    """One row per person per frame: frame, time, track ID, box, scores, then x/y/score per keypoint."""

    def __init__(self, path, *, keypoint_names: Sequence[str]) -> None:
        super().__init__(path)
        self._writer = csv.writer(self._file)
        columns = ["frame_index", "timestamp_s", "track_id", "box_x1", "box_y1", "box_x2", "box_y2",
                   "box_score", "score"]
        for name in keypoint_names:
            columns += [f"{name}_x", f"{name}_y", f"{name}_score"]
        self._num_keypoints = len(keypoint_names)
        self._writer.writerow(columns)

    def write(self, result: FrameResult) -> None:
        poses = result.poses
        if len(poses) and poses.num_keypoints != self._num_keypoints:
            raise ValueError(f"{self.path}: {poses.num_keypoints} keypoints per pose, header has {self._num_keypoints}")
        with_scores = poses.keypoints_with_scores()  # (N, K, 3) x, y px, score
        for person in range(len(poses)):
            row = [result.frame.index, f"{result.frame.timestamp_s:.6f}", int(poses.track_ids[person]),
                   *(f"{v:.2f}" for v in poses.boxes[person]), f"{poses.box_scores[person]:.4f}",
                   f"{person_score(poses.scores[person]):.4f}"]
            row += [f"{v:.4f}" if column % 3 == 2 else f"{v:.2f}"
                    for column, v in enumerate(with_scores[person].ravel())]
            self._writer.writerow(row)
        self.frames_written += 1


class CocoResultsSink(_TextSink):
    """COCO keypoint results: a JSON list of `{image_id, category_id, keypoints, score, bbox, track_id}`.

    `keypoints` is K x [x, y, score] flattened (the score in place of COCO's
    visibility, as the official HRNet results files do), `bbox` is xywh pixels,
    `score` the mean keypoint score times the box score, `image_id` from `image_id()`.
    """

    def __init__(self, path) -> None:
        super().__init__(path)
        self._file.write("[")
        self._entries = 0

    def write(self, result: FrameResult) -> None:
        poses = result.poses
        with_scores = poses.keypoints_with_scores()  # (N, K, 3) x, y px, score
        for person in range(len(poses)):
            x1, y1, x2, y2 = (float(v) for v in poses.boxes[person])
            entry = {"image_id": image_id(result.frame), "category_id": 1,
                     "keypoints": _round(with_scores[person].ravel(), 3),
                     "score": round(person_score(poses.scores[person]) * float(poses.box_scores[person]), 5),
                     "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                     "track_id": int(poses.track_ids[person])}
            self._file.write((",\n" if self._entries else "\n") + json.dumps(entry))
            self._entries += 1
        self.frames_written += 1

    def _finish(self, complete: bool) -> None:
        self._file.write("\n]\n")


class PoseTrackSink:
    """A poseval-ready PoseTrack prediction file for one video (see core.posetrack_format).

    Frames are listed in order. Without `image_infos` each gets `file_name`
    (the frame's image path, or `<video>/<index:06d>.jpg` for a video file)
    and `id` = frame index; with them (`posetrack run`: the GT's image
    entries), frame i is written as `image_infos[i]`. COCO keypoints are mapped
    onto PoseTrack18 by name (the eyes have no PoseTrack counterpart and are
    written missing). Poses without a track ID (-1) are left out.

    Args:
        path: final file name.
        keypoint_names: the model's keypoints (COCO or PoseTrack18 order).
        video_name: used in generated file names.
        image_infos: GT image entries, one per frame index.
        version: "2018" (COCO-style), "posetrack21" (the 2018 document with
            `person_id` = `track_id`, as PoseTrack21's kit reads it) or "2017" (annolist).
        score_threshold: keypoints scoring below it are written missing.
        include_recovered: also write the poses the tracker recovered by
            optical flow (`detection_index` -1); `posetrack run` writes
            detected people only.
    """

    def __init__(self, path, *, keypoint_names: Sequence[str], video_name: str = "",
                 image_infos: Sequence[dict] | None = None, version: str = "2018",
                 score_threshold: float | None = None, include_recovered: bool = True) -> None:
        try:
            self.layout = keypoint_layout_of(keypoint_names)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
        if version not in ("2018", "2017", "posetrack21"):
            raise ValueError(f"{path}: PoseTrack version must be '2018', '2017' or 'posetrack21', got {version!r}")
        self.path = Path(path)
        self._video_name = video_name
        self._image_infos = None if image_infos is None else list(image_infos)
        self._version = version
        self._score_threshold = score_threshold
        self._include_recovered = include_recovered
        self._frames: list | None = []
        self.frames_written = 0

    def _image_info(self, frame) -> dict:
        if self._image_infos is not None:
            return self._image_infos[frame.index]
        file_name = frame.path if frame.path is not None else f"{self._video_name}/{frame.index:06d}.jpg"
        return {"file_name": str(file_name), "id": int(frame.index), "frame_id": int(frame.index)}

    def write(self, result: FrameResult) -> None:
        poses = result.poses
        keep = poses.track_ids >= 0
        if not self._include_recovered:
            keep &= poses.detection_index >= 0
        kept = poses[keep]
        self._frames.append((self._image_info(result.frame), (kept.keypoints, kept.scores, kept.track_ids, kept.boxes)))
        self.frames_written += 1

    def close(self, complete: bool) -> None:
        if self._frames is None:
            return
        frames, self._frames = self._frames, None
        if self._version == "2017":
            document = posetrack17_prediction_document(frames, keypoint_layout=self.layout,
                                                       score_threshold=self._score_threshold)
        else:
            document = posetrack18_prediction_document(frames, keypoint_layout=self.layout,
                                                       score_threshold=self._score_threshold,
                                                       person_ids=self._version == "posetrack21")
        out = AtomicTextFile(self.path)
        try:
            json.dump(document, out)
        except BaseException:
            out.abandon(keep=False)
            raise
        if complete:
            out.commit()
        else:
            out.abandon(keep=True)
            logger.warning("%s left incomplete (%d frames)", out.part, self.frames_written)


class VideoSink:
    """An mp4 of the frames with skeletons, track IDs and per-ID colours (pipeline.drawing.draw_poses).

    Args:
        path: final file name (`.mp4`).
        fps: frame rate of the output (30 when the input has none).
        skeleton: 0-based keypoint pairs to connect.
        keypoint_threshold: keypoints scoring below it are not drawn.
    """

    def __init__(self, path, *, fps: float = 0.0, skeleton: Sequence[tuple[int, int]] = (),
                 keypoint_threshold: float = 0.3) -> None:
        self.path = Path(path)
        self._video = AtomicVideoWriter(self.path, fps=float(fps) if fps and fps > 0 else 30.0, fourcc="mp4v")
        self.part = self._video.part
        self._skeleton = tuple(tuple(edge) for edge in skeleton)
        self._keypoint_threshold = keypoint_threshold
        self._closed = False

    @property
    def frames_written(self) -> int:
        return self._video.frames_written

    def write(self, result: FrameResult) -> None:
        from pipeline.drawing import draw_poses  # noqa: PLC0415 - supervision is imported only when drawing

        size = result.frame.size_px
        if not self._video.is_open:
            self._video.open(size)
        elif size != self._video.size_px:
            width, height = self._video.size_px
            raise ValueError(f"{self.path}: frame {result.frame.index} is {size[0]}x{size[1]}, "
                             f"the video is {width}x{height}")
        poses = result.poses
        image = draw_poses(result.frame.image, poses.keypoints, poses.scores, self._skeleton,
                           track_ids=poses.track_ids, boxes=poses.boxes, keypoint_threshold=self._keypoint_threshold)
        self._video.write(image)

    def close(self, complete: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if not complete:
            self._video.abandon(keep=True)
            if self.part.exists():
                logger.warning("%s left incomplete (%d frames)", self.part, self.frames_written)
            return
        if not self._video.is_open:
            raise ValueError(f"{self.path}: no frames to write")
        self._video.commit()
