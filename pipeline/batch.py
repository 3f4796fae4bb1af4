"""Batch processing: find the videos of an input, run the pipeline on each, write the outputs.

Input discovery (`discover_inputs`):

* a camera index ("0") or a stream URL ("rtsp://...", "http://..."): one live
  input, recorded until Ctrl-C, `max_frames` or the end of the stream, named
  after the source and the start time (`camera0_20261203T131500Z`), so a
  recording never replaces another and is never skipped as already done;
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
video whose final outputs all exist, parse and hold as many frames as the
input (`outputs_problem`) is complete and is skipped on a rerun; a killed run
leaves only temporary files, and that video is done again. A `--max-frames`
trial that may have cut a video short leaves `<name>.trial` beside its
outputs (and its JSON says `"complete": false, "max_frames": N`): a later
trial skips the video, a full run redoes it.

Runs sharing an output folder: each input is tracked while holding
`<name>.lock` (`core.output_lock`), so two runs (the same batch started
twice, Ray workers, machines on a shared disk) never write the same file: a
run that finds an input's lock taken reports it "busy" (naming the other
process) and goes on with the next one, and an input that another run
completed while this one waited is skipped.

A video that cannot be read (corrupt, empty, unreadable) or whose pipeline
fails is logged with its name and reason and listed as failed; the others go on.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import json
import logging
import os
import re
import signal
import threading
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Iterable, Mapping, Sequence

from pipeline.capture import (
    IMAGE_EXTENSIONS,
    announced_frame_count,
    list_images,
    is_live_spec,
    open_source,
    VIDEO_EXTENSIONS,
    ImageFolderSource,
    SourceError,
    VideoFileSource,
)
from core.io import count_video_frames, write_text_atomic
from core.output_lock import LOCK_SUFFIX, OutputBusyError, hold_output_lock
from pipeline.engines import BatchWork, EngineReport, LocalEngine, Task
from pipeline.pipeline import Pipeline, PipelineError
from pipeline.profile import PipelineProfile
from pipeline.progress import InputProgress
from pipeline.sinks import CocoResultsSink, CsvPosesSink, JsonPosesSink, PoseTrackSink, VideoSink
from pipeline.work import (  # noqa: F401 - VIDEO_STATUSES re-exported
    VIDEO_STATUSES,
    InputInterrupted,
    Models,
    VideoResult,
    remove_partial_files,
)
from pose.backends import backend_summary

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
        path: the video file or frame folder; for a live input the spec as
            given (a URL is kept as a string: a Path would fold its "//").
        name: output name, the path relative to INPUT without extension ("/" separated).
        kind: "video", "frames" or "live" (a camera or a stream).
    """

    path: Path | str
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
    if isinstance(input_path, str) and is_live_spec(input_path):
        return [InputVideo(input_path, live_output_name(input_path), "live")]
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
    _log_files_left_out(root, found, wanted)
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


_LISTED_LEFT_OUT = 10  # names shown in the log line; the count covers the rest


def _log_files_left_out(root: Path, found: Sequence[InputVideo], wanted: Callable[[Path], bool]) -> None:
    """One warning naming the files under `root` that are part of no input, and why (hidden files excepted)."""
    used = {Path(item.path) for item in found}
    left_out = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not wanted(path) or path in used or path.parent in used:
            continue
        suffix = path.suffix.lower()
        if not suffix:
            why = "no extension"
        elif suffix in VIDEO_EXTENSIONS:
            why = "a video, but --input-type frames"
        elif suffix in IMAGE_EXTENSIONS:
            why = "an image beside videos (taken as their extracted frames)" if _has_videos(path.parent) \
                else "an image, but --input-type videos"
        else:
            why = f"{suffix} is not a video or image extension"
        left_out.append(f"{path.relative_to(root).as_posix()} ({why})")
    if left_out:
        more = len(left_out) - _LISTED_LEFT_OUT
        logger.warning("%s: %d file(s) left out: %s%s", root, len(left_out), ", ".join(left_out[:_LISTED_LEFT_OUT]),
                       f", and {more} more" if more > 0 else "")


def live_output_name(spec: str, started: datetime | None = None) -> str:
    """Output name of a live recording: the source made file-safe, then the UTC start time.

    "0" -> "camera0_20261203T131500Z"; "rtsp://cam.local:554/live" -> "rtsp_cam.local_554_live_2026...Z".
    """
    stamp = (started or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    if spec.isdigit():
        return f"camera{int(spec)}_{stamp}"
    safe = re.sub(r"[^A-Za-z0-9.\-]+", "_", spec.split("?")[0]).strip("_")
    return f"{safe[:80]}_{stamp}"


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
    input_files = {Path(item.path).resolve() for item in inputs if item.kind == "video"}
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


# Why whole-looking outputs may still cover only part of an input, each with the
# marker file that says so and when a rerun may keep them anyway.
PARTIAL_REASONS = {
    "trial": "a --max-frames trial; another trial keeps them, a full run redoes them",
    "truncated": "the input decoded fewer frames than it announced; kept only with --accept-truncated",
}


def _output_stem(paths: Mapping[str, Path]) -> str:
    """`OUT/<name>`: the outputs `paths` (format -> file) without their format suffixes."""
    fmt, path = next(iter(paths.items()))
    return str(path)[: -len(FORMAT_SUFFIXES[fmt])]


def marker_paths(paths: Mapping[str, Path]) -> dict[str, Path]:
    """`<name>.<reason>` beside the outputs `paths` (format -> file), one per `PARTIAL_REASONS` entry.

    A marker says that the outputs, although each is whole, cover only part of the input.
    """
    stem = _output_stem(paths)
    return {reason: Path(f"{stem}.{reason}") for reason in PARTIAL_REASONS}


def lock_path(paths: Mapping[str, Path]) -> Path:
    """`<name>.lock` beside the outputs `paths`: held while one process writes them (`core.output_lock`)."""
    return Path(_output_stem(paths) + LOCK_SUFFIX)


def is_complete(paths: Iterable[Path], markers: Iterable[Path] = (), accept: Collection[str] = ()) -> bool:
    """The one completion check of every resumable command (`track`, `posetrack run`).

    An output gets its final name only when whole (`core.io` atomic writers),
    so the outputs are complete when every final file exists and no marker
    file (`marker_paths`) says they cover only part of the input, except
    markers whose reason (their suffix) is in `accept`.
    """
    if not all(Path(path).is_file() for path in paths):
        return False
    return all(not marker.exists() or marker.suffix.lstrip(".") in accept for marker in map(Path, markers))


def _json_frames(path: Path) -> tuple[int, int, bool]:
    """(frames, skipped images, complete) of a pose JSON output; ValueError when it is not a whole one."""
    with path.open(encoding="utf-8") as stream:
        document = json.load(stream)
    if not isinstance(document, dict) or not isinstance(document.get("frames"), list):
        raise ValueError("not an hrtrack pose file")
    frames = len(document["frames"])
    if document.get("num_frames") != frames:
        raise ValueError(f"holds {frames} frames but says {document.get('num_frames')}")
    return frames, len(document.get("skipped_frames", ())), document.get("complete") is True


def _check_parses(fmt: str, path: Path) -> int | None:
    """Frames in a final output of format `fmt` when the format says (json, video), else None; ValueError if broken."""
    if fmt == "video":
        frames = count_video_frames(path)
        if not frames:
            raise ValueError("cannot be read as a video")
        return frames
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.reader(stream))
        if not rows or any(len(row) != len(rows[0]) for row in rows):
            raise ValueError("not a whole CSV table (missing header or rows of different lengths)")
        return None
    with path.open(encoding="utf-8") as stream:
        json.load(stream)
    return None


def outputs_problem(item: InputVideo, paths: Mapping[str, Path], markers: Mapping[str, Path]) -> str:
    """Why final-named outputs are not the whole result of `item` ("" when they are; see the module doc).

    Every file must parse; the pose JSON (or else the video) must hold as many
    frames as the input, unless a marker (`marker_paths`) says they cover only
    part of it. Guards against files from before the output locks or written by
    something else.
    """
    written = None
    for fmt, path in sorted(paths.items(), key=lambda entry: entry[0] != "json"):  # the JSON first
        try:
            if fmt == "json":
                frames, skipped, complete = _json_frames(path)
                if not complete and not any(marker.exists() for marker in markers.values()):
                    return f"{path} says it covers only part of the input"
                written = (frames, skipped, True)
            else:
                frames = _check_parses(fmt, path)
                if frames is not None and written is not None and frames != written[0]:
                    return f"{path} holds {frames} frames, the pose JSON {written[0]}"
                if frames is not None and written is None:
                    written = (frames, 0, False)  # skipped images are counted in the JSON only
        except (OSError, ValueError, UnicodeDecodeError, csv.Error) as error:
            return f"{path} is not a whole output ({error})"
    if written is None or any(marker.exists() for marker in markers.values()):
        return ""
    frames, skipped, counted_skipped = written
    expected = input_frame_count(item)
    if item.kind == "frames" and counted_skipped and expected and frames + skipped < expected:
        return f"its outputs hold {frames + skipped} of the {expected} images of {item.path}"
    if item.kind == "video" and expected and frames < expected:
        return f"its outputs hold {frames} of the {expected} frames that {item.path} announces"
    return ""


@dataclass(frozen=True)
class TrackOptions:
    """How one input is tracked and written.

    Attributes:
        max_frames: stop each input after this many frames (a trial; for a
            camera or stream, the length of the recording).
        open_timeout_s: how long a camera or stream may take to deliver its first frame.
        keypoint_threshold: keypoints scoring below it are not drawn in the video.
        progress: show a per-frame progress bar.
        accept_truncated: an input that decodes fewer frames than it announces
            counts as done (its outputs are still marked `.truncated`).
        pipeline_options: extra `Pipeline` keyword arguments (queue_size, pose_batch_frames, detect_every).
        profile: collect a `PipelineProfile` (`--profile`): in the JSON output
            and in `VideoResult.profile`.
    """

    max_frames: int | None = None
    open_timeout_s: float = 10.0
    keypoint_threshold: float = 0.3
    progress: bool = True
    accept_truncated: bool = False
    pipeline_options: Mapping[str, object] = field(default_factory=dict)
    profile: bool = False


@dataclass
class BatchSummary:
    """What a batch run did: one `VideoResult` per input tracked, the names skipped as already
    complete, and (after Ctrl-C) the names of the inputs not started."""

    results: list[VideoResult] = field(default_factory=list)
    skipped_before: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> list[str]:
        """Inputs left alone as complete: when the run was planned, or found so by the time their turn came."""
        return self.skipped_before + [result.name for result in self._named("skipped")]

    @property
    def busy(self) -> list[str]:
        """Inputs whose outputs another process was writing (left to it)."""
        return [result.name for result in self._named("busy")]

    @property
    def trials(self) -> list[str]:
        """Inputs whose outputs cover only their first `--max-frames` frames."""
        return [result.name for result in self.results if result.trial]

    def add(self, result: VideoResult) -> None:
        self.results.append(result)

    def _named(self, status: str) -> list[VideoResult]:
        return [result for result in self.results if result.status == status]

    @property
    def done(self) -> list[str]:
        return [result.name for result in self._named("done")]

    @property
    def truncated(self) -> list[str]:
        return [result.name for result in self._named("truncated")]

    @property
    def failed(self) -> list[tuple[str, str]]:
        """(name, reason) of each failed input."""
        return [(result.name, result.reason) for result in self._named("failed")]

    @property
    def interrupted(self) -> bool:
        return bool(self._named("interrupted"))

    @property
    def frames(self) -> int:
        return sum(result.frames for result in self.results)

    @property
    def seconds(self) -> float:
        return sum(result.seconds for result in self.results)

    @property
    def exit_status(self) -> int:
        """See `EXIT_STATUSES`: 130 after Ctrl-C, 1 when an input failed or was busy, 3 when one was truncated, else 0."""
        if self.interrupted:
            return 130
        if self.failed or self.busy:
            return 1
        return 3 if self.truncated else 0

    def lines(self) -> list[str]:
        """The summary printed by `track`: counts, then one line per input with its speed."""
        counts = (f"done: {len(self.done)}, skipped (already complete): {len(self.skipped)}, "
                  f"failed: {len(self.failed)}")
        if self.truncated:
            counts += f", truncated: {len(self.truncated)}"
        if self.busy:
            counts += f", busy (another run writes them): {len(self.busy)}"
        if self.interrupted:
            counts += f" (interrupted; not started: {len(self.not_started)})"
        lines = [counts]
        if self.trials:
            lines.append(f"--max-frames trial: the outputs of {len(self.trials)} input(s) cover only their first "
                         f"frames (partial; marked <name>.trial; a run without --max-frames redoes them)")
        labels = {"done": "done", "truncated": "TRUNCATED", "failed": "FAILED", "interrupted": "STOPPED",
                  "busy": "BUSY", "skipped": "skipped"}
        for result in self.results:
            if result.status == "skipped":
                continue  # listed with the others skipped below
            line = f"  {labels[result.status]:<8} {result.name}"
            if result.frames or result.status not in ("failed", "busy"):
                line += f": {result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} fps)"
            if result.skipped_frames:
                line += f", {result.skipped_frames} unreadable image(s) skipped"
            if result.trial:
                line += ", partial (--max-frames trial)"
            if result.reason:
                separator = "," if result.frames or result.status not in ("failed", "busy") else ":"
                line += f"{separator} {result.reason}"
            lines.append(line)
        lines += [f"  skipped  {name}" for name in self.skipped]
        lines += [f"  not started {name}" for name in self.not_started]
        described = next((result.pose_backend for result in reversed(self.results) if result.pose_backend), None)
        if described:
            lines.append(f"pose network: {backend_summary(described)}")
        if self.frames:
            lines.append(f"total: {self.frames} frames in {self.seconds:.1f} s "
                         f"({self.frames / self.seconds if self.seconds > 0 else 0.0:.1f} fps)")
        return lines


EXIT_STATUSES = {
    0: "every input done (or already complete)",
    1: "some input failed, or another run was writing its outputs (BUSY; named in the summary)",
    2: "bad arguments or models",
    3: "no failure, but some input was truncated (fewer frames decoded than announced; --accept-truncated keeps it)",
    130: "interrupted (Ctrl-C)",
}


def open_input(item: InputVideo, max_frames: int | None = None, open_timeout_s: float = 10.0):
    """The source of one input (raises SourceError/FileNotFoundError naming it when unreadable)."""
    if item.kind == "live":
        return open_source(str(item.path), open_timeout_s=open_timeout_s)
    if item.kind == "frames":
        return ImageFolderSource(item.path, max_frames=max_frames)
    return VideoFileSource(item.path, max_frames=max_frames)


def make_sinks(paths: dict[str, Path], *, source, keypoint_names: Sequence[str],
               skeleton: Sequence[tuple[int, int]], video_name: str, keypoint_threshold: float = 0.3,
               profile=None, run_info: Callable[[], dict] | None = None, max_frames: int | None = None) -> list:
    """One sink per requested format; on a failure the ones already opened are closed as incomplete.

    The JSON sink asks the source at its close how much of the input was read
    (`source_coverage`), so a truncated input's JSON says so; `max_frames`: a
    trial's limit, which a JSON that reached it records (not for live sources,
    where it is the recording's length).
    """
    sinks = []
    fps = float(getattr(source, "fps", 0.0))
    builders: dict[str, Callable[[Path], object]] = {
        "json": lambda path: JsonPosesSink(path, source=source.name, keypoint_names=keypoint_names,
                                           skeleton=skeleton, fps=fps, coverage=lambda: source_coverage(source),
                                           profile=profile, run_info=run_info,
                                           max_frames=None if source.live else max_frames),
        "posetrack": lambda path: PoseTrackSink(path, keypoint_names=keypoint_names, video_name=video_name),
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


def source_coverage(source) -> dict:
    """How much of its input a file source delivered, for the JSON header: empty when all of it.

    {"frames_decoded": n, "frames_announced": m} when a video stopped decoding
    before its announced end; {"skipped_frames": [paths]} for unreadable images.
    """
    coverage: dict = {}
    if getattr(source, "truncated", False):
        coverage.update(frames_decoded=int(source.frames_decoded), frames_announced=int(source.frames_announced))
    skipped = list(getattr(source, "skipped_paths", ()))
    if skipped:
        coverage["skipped_frames"] = [str(path) for path in skipped]
    return coverage


def track_video(item: InputVideo, paths: dict[str, Path], models: Models,
                options: TrackOptions = TrackOptions(), *,
                skip_complete: Collection[str] | None = None) -> VideoResult:
    """Track ONE input into its outputs `paths` (format -> final file); the unit of work of a batch.

    Holds the outputs' lock (`lock_path`) throughout: when another process
    holds it the result is "busy" and nothing is touched. With `skip_complete`
    (the accepted marker reasons, as `plan_batch`'s `accept`), outputs that
    became complete meanwhile (another run) are left as they are ("skipped").
    The tracker is `reset()` first, so track IDs start afresh. Never raises for
    a bad input or a failed write: the `VideoResult` says what happened (its
    `.part` files are removed on failure). Ctrl-C is re-raised after the
    pipeline stopped, as `InputInterrupted` with the frames done; the outputs
    then stay under their `.part` names. Marker files (`marker_paths`) are left
    or removed to say whether the outputs cover the whole input.
    """
    try:
        with hold_output_lock(lock_path(paths)):
            markers = marker_paths(paths)
            if (skip_complete is not None and is_complete(paths.values(), markers.values(), skip_complete)
                    and not outputs_problem(item, paths, markers)):
                logger.info("%s: completed by another run meanwhile, skipped", item.name)
                return VideoResult(item.name, "skipped", reason="completed by another run meanwhile")
            return _track_locked(item, paths, models, options)
    except OutputBusyError as busy:
        where = Path(busy.path).parent
        reason = (f"{f'another hrtrack ({busy.holder})' if busy.holder else 'another hrtrack'} is writing its "
                  f"outputs in {where}; left to it (rerun once it has finished)")
        logger.warning("%s: %s", item.name, reason)
        return VideoResult(item.name, "busy", reason=reason)
    except OSError as error:  # the lock file cannot be made: the output folder is not writable
        logger.error("%s: %s", item.name, error)
        return VideoResult(item.name, "failed", reason=str(error))


def _track_locked(item: InputVideo, paths: dict[str, Path], models: Models, options: TrackOptions) -> VideoResult:
    """`track_video` once its lock is held."""
    started = time.perf_counter()
    markers = marker_paths(paths)
    frames = 0
    source = None
    profile = PipelineProfile() if options.profile else None
    try:
        source = open_input(item, options.max_frames, options.open_timeout_s)
        if source.live:
            source = _EndOnRequest(source)
        sinks = make_sinks(paths, source=source, keypoint_names=tuple(getattr(models.estimator, "keypoint_names", ())),
                           skeleton=tuple(getattr(models.estimator, "skeleton", ())),
                           video_name=Path(item.name).name, keypoint_threshold=options.keypoint_threshold,
                           profile=profile, run_info=lambda: {"pose_backend": pose_backend(models.estimator)},
                           max_frames=options.max_frames)
        if models.tracker is not None and hasattr(models.tracker, "reset"):
            models.tracker.reset()
        if hasattr(models.detector, "reset"):  # a detection file counts the frames it had boxes for
            models.detector.reset()
        pipeline = Pipeline(source, models.detector, models.estimator, models.tracker, live=source.live,
                            sinks=sinks, max_frames=options.max_frames, profile=profile,
                            **dict(options.pipeline_options))
        crops_done = (lambda: models.estimator.crops_done) if hasattr(models.estimator, "crops_done") else None
        with InputProgress(item.name, source.frame_count, enabled=options.progress,
                           crops_done=crops_done) as progress, _ctrl_c_ends(source):
            for _ in pipeline.run():
                frames += 1
                progress.update(1)
    except KeyboardInterrupt:
        if source is not None:
            source.close()
        logger.error("%s: interrupted after %d frames; outputs left as .part files%s", item.name, frames,
                     "" if item.kind == "live" else " (a rerun redoes it)")
        raise InputInterrupted(frames) from None
    except (SourceError, PipelineError, OSError, ValueError) as error:
        if source is not None:
            source.close()
        reason = _reason(error)
        logger.error("%s (%s): %s", item.name, item.path, reason)
        removed = remove_partial_files(paths.values())
        if removed:
            logger.info("%s: removed %s", item.name, ", ".join(str(part) for part in removed))
        return VideoResult(item.name, "failed", frames, time.perf_counter() - started, reason)
    seconds = time.perf_counter() - started
    unmatched = getattr(models.detector, "unmatched_reason", lambda: "")()
    if unmatched:  # a detection file for other images: empty outputs would pass for a result
        logger.error("%s: %s", item.name, unmatched)
        for path in (*paths.values(), *markers.values()):
            path.unlink(missing_ok=True)
        return VideoResult(item.name, "failed", frames, seconds, unmatched)
    announced = getattr(source, "frames_announced", None)
    skipped = len(getattr(source, "skipped_paths", ()))
    # A live recording is named after its start time: nothing to resume, no trial to redo.
    is_trial = options.max_frames is not None and frames >= options.max_frames and item.kind != "live"
    _set_marker(markers["trial"], is_trial,
                f"outputs cover only the first {options.max_frames} frames (--max-frames)\n")
    truncated = bool(getattr(source, "truncated", False))
    reason = ""
    if truncated:
        reason = (f"decoding stopped at frame {source.frames_decoded} of {announced} announced "
                  f"(truncated or corrupt video)")
    _set_marker(markers["truncated"], truncated, reason + "\n")
    logger.info("%s: %d frames in %.1f s -> %s", item.name, frames, seconds, ", ".join(str(p) for p in paths.values()))
    status = "truncated" if truncated and not options.accept_truncated else "done"
    return VideoResult(item.name, status, frames, seconds, reason, announced, skipped,
                       profile.as_dict() if profile is not None else None, pose_backend(models.estimator),
                       trial=is_trial)


def pose_backend(estimator) -> dict | None:
    """`estimator.describe_backend()` where it has one (a test's stand-in may not)."""
    describe = getattr(estimator, "describe_backend", None)
    return describe() if describe is not None else None


class _EndOnRequest:
    """A live source that ends (`read()` gives None) once `end()` was called.

    Ctrl-C on a camera or stream then finishes the recording, so its outputs
    get their final names, instead of abandoning it.
    """

    def __init__(self, source) -> None:
        self._source = source
        self._ended = threading.Event()

    def end(self) -> None:
        self._ended.set()

    def read(self, timeout_s: float | None = None):
        return None if self._ended.is_set() else self._source.read(timeout_s)

    def close(self) -> None:
        self._source.close()

    def __getattr__(self, name: str):
        return getattr(self._source, name)


@contextlib.contextmanager
def _ctrl_c_ends(source):
    """While recording a live source in the main thread, the first Ctrl-C ends it (the next ones interrupt)."""
    if not isinstance(source, _EndOnRequest) or threading.current_thread() is not threading.main_thread():
        yield
        return

    def end_recording(signum, frame) -> None:
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts as usual
        logger.warning("%s: Ctrl-C, finishing the recording (press Ctrl-C again to abandon it)", source.name)
        source.end()

    previous = signal.signal(signal.SIGINT, end_recording)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is end_recording:
            signal.signal(signal.SIGINT, previous)


def _reason(error: BaseException) -> str:
    """The user-facing reason of a failure: a stage's own error, without the pipeline's wrapping."""
    if isinstance(error, PipelineError):
        inner = error.error
        if isinstance(inner, (OSError, ValueError, SourceError)):
            return f"{error.stage}: {inner}"
    return str(error)


def _set_marker(marker: Path, present: bool, text: str) -> None:
    if present:
        write_text_atomic(marker, text)
    else:
        marker.unlink(missing_ok=True)


def input_frame_count(item: InputVideo) -> int:
    """Frames an input announces (a video's container count, a frame folder's images; 0 when unknown or live)."""
    if item.kind == "video":
        return announced_frame_count(item.path)
    if item.kind == "frames":
        return len(list_images(Path(item.path)))
    return 0


def plan_batch(inputs: Sequence[InputVideo], out_dir: str | Path, formats: Sequence[str], *,
               overwrite: bool = False, accept: Collection[str] = (),
               sizes: bool = False) -> tuple[list[Task], list[str]]:
    """(one `Task` per input to track, names of those skipped because their outputs are complete).

    `accept`: marker reasons that do not make outputs incomplete (`is_complete`);
    `sizes`: read each input's announced frame count (for the Ray engine's largest-first order).
    """
    tasks: list[Task] = []
    skipped: list[str] = []
    for item in inputs:
        paths = output_paths(out_dir, item, formats)
        markers = marker_paths(paths)
        if not overwrite and is_complete(paths.values(), markers.values(), accept):
            problem = outputs_problem(item, paths, markers)
            if not problem:
                logger.info("%s: outputs complete, skipped", item.name)
                skipped.append(item.name)
                continue
            logger.warning("%s: %s; tracking it again", item.name, problem)
        relative = (lambda files: tuple(path.relative_to(out_dir).as_posix() for path in files))
        tasks.append(Task(item.name, item, relative(paths.values()), relative(markers.values()),
                          input_frame_count(item) if sizes else 0, resumable=item.kind != "live",
                          lock=relative([lock_path(paths)])[0]))
    return tasks, skipped


def track_task(item: InputVideo, out_dir: Path, models: Models, *, formats: Sequence[str],
               options: TrackOptions, skip_complete: Collection[str] | None = None) -> VideoResult:
    """`BatchWork.work` of `track`: one input into its outputs under `out_dir` (`track_video`)."""
    return track_video(item, output_paths(out_dir, item, formats), models, options, skip_complete=skip_complete)


def run_tracking(inputs: Sequence[InputVideo], out_dir: str | Path, formats: Sequence[str],
                 build_models: Callable[[], Models], options: TrackOptions = TrackOptions(), *,
                 overwrite: bool = False, engine=None) -> tuple[BatchSummary, EngineReport]:
    """Track every input not yet complete on `engine` (default `LocalEngine()`); the summary and the engine's report.

    `build_models`: `() -> Models`, picklable for the Ray engine (it runs in each worker).
    Raises `pipeline.engines.ModelSetupError` when the models cannot be built.
    """
    engine = engine if engine is not None else LocalEngine()
    if engine.remote:
        live = [item.name for item in inputs if item.kind == "live"]
        if live:
            raise ValueError(f"a camera or stream ({live[0]}) is recorded on this machine: use --engine local")
    accept = ("trial",) if options.max_frames is not None else ()
    accept += ("truncated",) if options.accept_truncated else ()
    tasks, skipped = plan_batch(inputs, out_dir, formats, overwrite=overwrite, accept=accept, sizes=engine.remote)
    # Made here, not by the first lock: a lock removes the folders it made, and the output folder stays.
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    # Per-frame bars of other processes would interleave on this terminal: the engine shows one bar over all videos.
    task_options = dataclasses.replace(options, progress=False) if engine.remote else options
    # Another run may complete an input while it waits in this run's queue: checked again under its lock.
    work = BatchWork(build_models, functools.partial(track_task, formats=tuple(formats), options=task_options,
                                                     skip_complete=None if overwrite else accept))
    report = engine.run(tasks, work, out_dir, already_done=len(skipped), progress=options.progress)
    items = {task.name: task.payload for task in tasks}
    results = [_settle_busy(result, items[result.name], out_dir, formats, accept) for result in report.results]
    return BatchSummary(results, skipped, list(report.not_started)), report


def _settle_busy(result: VideoResult, item: InputVideo, out_dir: str | Path, formats: Sequence[str],
                 accept: Collection[str]) -> VideoResult:
    """A "busy" input whose other run has completed it by the end of this one: "skipped" (nothing left to do)."""
    if result.status != "busy":
        return result
    paths = output_paths(out_dir, item, formats)
    markers = marker_paths(paths)
    if is_complete(paths.values(), markers.values(), accept) and not outputs_problem(item, paths, markers):
        return dataclasses.replace(result, status="skipped", reason="completed by another run")
    return result


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
    accept_truncated: bool = False,
    open_timeout_s: float = 10.0,
    pipeline_options: dict | None = None,
    profile: bool = False,
) -> BatchSummary:
    """Track every input in this process with these models (`run_tracking` on a `LocalEngine`).

    The models are shared by all inputs. Ctrl-C stops the current input (its
    outputs stay temporary) and returns the summary marked interrupted.
    `profile=True`: each `VideoResult.profile` (and JSON output) gets the run's profile.
    """
    models = Models(detector, estimator, tracker)
    options = TrackOptions(max_frames=max_frames, open_timeout_s=open_timeout_s,
                           keypoint_threshold=keypoint_threshold, progress=progress,
                           accept_truncated=accept_truncated, pipeline_options=dict(pipeline_options or {}),
                           profile=profile)
    summary, _ = run_tracking(inputs, out_dir, formats, lambda: models, options, overwrite=overwrite,
                              engine=LocalEngine(models))
    return summary
