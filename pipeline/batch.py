"""Batch processing: find the videos of an input, run the pipeline on each, write the outputs.

Input discovery (`discover_inputs`):

* a file: one video;
* a folder: every video file below it (recursively, `VIDEO_EXTENSIONS`), and
  every folder below it (itself included) that holds images and no video
  files: one frame sequence each (PoseTrack layout: `images/val/<video>/*.jpg`).
  `input_type="videos"` or `"frames"` keeps only one kind. Anything under
  `exclude` (the output folder, which may sit inside INPUT) is never an input,
  so a rerun does not track its own annotated videos.

Output naming: `OUT/<path relative to INPUT, without extension><suffix>`, with
the suffixes of `FORMAT_SUFFIXES` (a single file or frame folder given as INPUT
is named after itself).

Resuming: sinks write under temporary names and rename at the very end, so a
video whose final outputs all exist is complete and is skipped on a rerun; a
killed run leaves only temporary files, and that video is done again. A
`--max-frames` trial that may have cut a video short leaves `<name>.trial`
beside its outputs: a later trial skips the video, a full run redoes it.

A video that cannot be read (corrupt, empty, unreadable) or whose pipeline
fails is logged with its name and reason and listed as failed; the others go on.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from pipeline.capture import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    ImageFolderSource,
    SourceError,
    VideoFileSource,
)
from pipeline.pipeline import Pipeline, PipelineError
from pipeline.sinks import CocoResultsSink, CsvPosesSink, JsonPosesSink, PoseTrack18Sink, VideoSink

logger = logging.getLogger(__name__)

FORMAT_SUFFIXES = {
    "json": ".json",
    "posetrack": ".posetrack.json",
    "coco": ".coco.json",
    "csv": ".csv",
    "video": ".mp4",
}


@dataclass(frozen=True)
class InputVideo:
    """One unit of work: a video file or a folder of frames.

    Attributes:
        path: the video file or frame folder.
        name: output name, the path relative to INPUT without extension ("/" separated).
        kind: "video" or "frames".
    """

    path: Path
    name: str
    kind: str


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _has_images(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def _has_videos(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS for p in folder.iterdir())


def _is_within(path: Path, folders: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == folder or folder in resolved.parents for folder in folders)


def discover_inputs(input_path: str | Path, input_type: str = "auto",
                    exclude: Sequence[str | Path] = ()) -> list[InputVideo]:
    """The videos and frame folders of `input_path`, sorted by output name (see the module doc).

    `exclude`: folders (typically the output folder) whose contents are never
    inputs; one that is INPUT itself or above it excludes nothing.
    """
    if input_type not in ("auto", "videos", "frames"):
        raise ValueError(f"input_type must be auto, videos or frames, got {input_type!r}")
    root = Path(input_path)
    if not root.exists():
        raise FileNotFoundError(f"input not found: {root}")
    if root.is_file():
        if input_type == "frames":
            raise ValueError(f"{root}: a file, but input type 'frames' needs a folder of images")
        return [InputVideo(root, root.stem, "video")]
    resolved_root = root.resolve()
    excluded = [folder for folder in (Path(f).resolve() for f in exclude) if resolved_root in folder.parents]

    def wanted(path: Path) -> bool:
        return _visible(path, root) and not _is_within(path, excluded)

    found: list[InputVideo] = []
    if input_type in ("auto", "videos"):
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS and wanted(path):
                found.append(InputVideo(path, path.relative_to(root).with_suffix("").as_posix(), "video"))
    if input_type in ("auto", "frames"):
        for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            if not wanted(folder) or not _has_images(folder):
                continue
            if input_type == "auto" and _has_videos(folder):
                continue  # frames next to a video are taken to be its extracted frames
            name = root.name if folder == root else folder.relative_to(root).as_posix()
            found.append(InputVideo(folder, name, "frames"))
    if not found:
        kinds = {"auto": "videos or image folders", "videos": "videos", "frames": "image folders"}[input_type]
        raise ValueError(f"no {kinds} found in {root} (video extensions: {', '.join(VIDEO_EXTENSIONS)})")
    by_name: dict[str, InputVideo] = {}
    for item in found:
        if item.name in by_name:
            raise ValueError(f"{by_name[item.name].path} and {item.path} would write the same outputs "
                             f"'{item.name}.*'; rename one or pass --input-type")
        by_name[item.name] = item
    return sorted(found, key=lambda item: item.name)


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """"json,csv,video" (or a list of such strings) -> ("json", "csv", "video"), checked, in given order."""
    items = [text] if isinstance(text, str) else list(text)
    formats: list[str] = []
    for item in items:
        for name in item.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in FORMAT_SUFFIXES:
                raise ValueError(f"unknown output format {name!r}; choose from {', '.join(FORMAT_SUFFIXES)}")
            if name not in formats:
                formats.append(name)
    if not formats:
        raise ValueError("no output format given")
    return tuple(formats)


def output_paths(out_dir: str | Path, item: InputVideo, formats: Sequence[str]) -> dict[str, Path]:
    """Final output file of each format for one input."""
    return {name: Path(out_dir) / f"{item.name}{FORMAT_SUFFIXES[name]}" for name in formats}


def check_outputs_spare_inputs(inputs: Sequence[InputVideo], out_dir: str | Path, formats: Sequence[str]) -> None:
    """ValueError naming the file when an output would replace an input (e.g. --out INPUT with video output)."""
    input_files = {item.path.resolve() for item in inputs if item.kind == "video"}
    for item in inputs:
        for path in output_paths(out_dir, item, formats).values():
            if path.resolve() in input_files:
                raise ValueError(f"output {path} would overwrite the input video {path.resolve()}; "
                                 f"choose another --out folder")


def prepare_output_folder(out_dir: str | Path) -> Path:
    """Create `out_dir` (and parents); OSError naming it when it cannot hold the outputs."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        raise NotADirectoryError(f"output folder {folder}: a file of that name exists") from error
    except OSError as error:
        raise OSError(f"output folder {folder} cannot be created: {error.strerror or error}") from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder {folder} is not writable")
    return folder


def trial_marker_path(out_dir: str | Path, item: InputVideo) -> Path:
    """`<name>.trial`: present while the outputs of `item` come from a `max_frames` trial run."""
    return Path(out_dir) / f"{item.name}.trial"


def is_complete(paths: dict[str, Path], trial_marker: Path | None = None, max_frames: int | None = None) -> bool:
    """All final outputs exist (they only get their final names when whole).

    Outputs of a trial run (`trial_marker` exists) are complete only for
    another trial run: a full run must not skip a video it has only sampled.
    """
    if not all(path.is_file() for path in paths.values()):
        return False
    return max_frames is not None or trial_marker is None or not trial_marker.exists()


@dataclass
class BatchSummary:
    """What a batch run did. `failed` holds (name, reason)."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    interrupted: bool = False

    @property
    def exit_status(self) -> int:
        """130 after Ctrl-C (the shell convention), 1 when a video failed, else 0."""
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def lines(self) -> list[str]:
        lines = [f"done: {len(self.done)}, skipped (already complete): {len(self.skipped)}, "
                 f"failed: {len(self.failed)}" + (" (interrupted)" if self.interrupted else "")]
        lines += [f"  done     {name}" for name in self.done]
        lines += [f"  skipped  {name}" for name in self.skipped]
        lines += [f"  FAILED   {name}: {reason}" for name, reason in self.failed]
        return lines


def open_input(item: InputVideo, max_frames: int | None = None):
    """The file source of one input (raises SourceError/FileNotFoundError naming it when unreadable)."""
    if item.kind == "frames":
        return ImageFolderSource(item.path, max_frames=max_frames)
    return VideoFileSource(item.path, max_frames=max_frames)


def make_sinks(paths: dict[str, Path], *, source, keypoint_names: Sequence[str],
               skeleton: Sequence[tuple[int, int]], video_name: str, keypoint_threshold: float = 0.3) -> list:
    """One sink per requested format; on a failure the ones already opened are closed as incomplete."""
    sinks = []
    fps = float(getattr(source, "fps", 0.0))
    builders: dict[str, Callable[[Path], object]] = {
        "json": lambda path: JsonPosesSink(path, source=source.name, keypoint_names=keypoint_names,
                                           skeleton=skeleton, fps=fps),
        "posetrack": lambda path: PoseTrack18Sink(path, keypoint_names=keypoint_names, video_name=video_name),
        "coco": lambda path: CocoResultsSink(path),
        "csv": lambda path: CsvPosesSink(path, keypoint_names=keypoint_names),
        "video": lambda path: VideoSink(path, fps=fps, skeleton=skeleton, keypoint_threshold=keypoint_threshold),
    }
    try:
        for name, path in paths.items():
            sinks.append(builders[name](path))
    except BaseException:
        for sink in sinks:
            sink.close(False)
        raise
    return sinks


def run_batch(
    inputs: Sequence[InputVideo],
    out_dir: str | Path,
    formats: Sequence[str],
    *,
    detector,
    estimator,
    tracker=None,
    max_frames: int | None = None,
    overwrite: bool = False,
    keypoint_threshold: float = 0.3,
    progress: bool = True,
    pipeline_options: dict | None = None,
) -> BatchSummary:
    """Track every input; outputs in `out_dir`. Returns what was done, skipped and failed.

    The models are shared by all inputs; the tracker is `reset()` before each
    one so track IDs start afresh per video. Ctrl-C stops the current video
    (its outputs stay temporary) and returns the summary marked interrupted.
    """
    summary = BatchSummary()
    keypoint_names = tuple(getattr(estimator, "joint_names", ()))
    skeleton = tuple(getattr(estimator, "skeleton", ()))
    videos_bar = tqdm(total=len(inputs), unit="video", desc="videos", position=0, disable=not progress)
    try:
        for item in inputs:
            paths = output_paths(out_dir, item, formats)
            trial_marker = trial_marker_path(out_dir, item)
            if not overwrite and is_complete(paths, trial_marker, max_frames):
                logger.info("%s: outputs complete, skipped", item.name)
                summary.skipped.append(item.name)
                videos_bar.update(1)
                continue
            try:
                frames = _track_one(item, paths, detector, estimator, tracker, max_frames, keypoint_names,
                                    skeleton, keypoint_threshold, progress, pipeline_options or {})
            except KeyboardInterrupt:
                # The pipeline has stopped its threads and left this video's outputs temporary.
                logger.error("%s: interrupted; outputs left incomplete", item.name)
                summary.interrupted = True
                break
            except (SourceError, PipelineError, OSError, ValueError) as error:
                reason = str(error)
                logger.error("%s (%s): %s", item.name, item.path, reason)
                summary.failed.append((item.name, reason))
            else:
                summary.done.append(item.name)
                summary.frames += frames
                _mark_trial(trial_marker, max_frames is not None and frames >= max_frames, max_frames)
            videos_bar.update(1)
    finally:
        videos_bar.close()
    return summary


def _mark_trial(marker: Path, truncated: bool, max_frames: int | None) -> None:
    """Leave `marker` when `max_frames` may have cut the input short, remove it after a full run."""
    if truncated:
        marker.write_text(f"outputs cover only the first {max_frames} frames (--max-frames)\n", encoding="utf-8")
    else:
        marker.unlink(missing_ok=True)


def _track_one(item, paths, detector, estimator, tracker, max_frames, keypoint_names, skeleton,
               keypoint_threshold, progress, pipeline_options) -> int:
    source = open_input(item, max_frames)
    try:
        sinks = make_sinks(paths, source=source, keypoint_names=keypoint_names, skeleton=skeleton,
                           video_name=Path(item.name).name, keypoint_threshold=keypoint_threshold)
    except BaseException:
        source.close()
        raise
    if tracker is not None and hasattr(tracker, "reset"):
        tracker.reset()
    pipeline = Pipeline(source, detector, estimator, tracker, live=False, sinks=sinks, max_frames=max_frames,
                        **pipeline_options)
    frames = 0
    with tqdm(total=source.frame_count, unit="frame", desc=item.name, position=1, leave=False,
              disable=not progress) as frames_bar:
        for result in pipeline.run():
            frames += 1
            frames_bar.update(1)
    logger.info("%s: %d frames -> %s", item.name, frames, ", ".join(str(p) for p in paths.values()))
    return frames
