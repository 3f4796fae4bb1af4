"""`--profile`: where a run's time went, per stage and per frame.

A `PipelineProfile` collects the `FrameResult.timings_s` of every frame of a
run (the pipeline adds each frame once, after its sinks wrote it) and reports:

- per-stage milliseconds per frame: capture, detection, pose (and within pose:
  crop, network, decode, from the estimator's `last_timings_s`), tracking, sinks;
- queue waits: milliseconds per frame a frame sat in front of each stage
  ("wait_<stage>"), so a user sees which stage everything queues for;
- frames, wall seconds from the first frame taken to the last one written, fps.

`as_dict()` is what the JSON output's `"profile"` field holds; `lines()` is
what `track --profile` prints. Thread-safe: frames are added by the sinks
thread while another thread may read the summary (the GUI shows it live).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

# Display order; any other timing key follows in the order first seen.
STAGE_ORDER = ("capture", "detection", "pose", "crop", "network", "decode", "tracking", "sinks", "latency")
# Parts of "pose" (they add up to about the pose stage's time), indented in the table.
POSE_PARTS = ("crop", "network", "decode")


class PipelineProfile:
    """Running sums of per-frame stage times (seconds in, milliseconds out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums_s: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self.frames = 0
        self.detected_frames = 0
        self._first_s: float | None = None
        self._last_s: float | None = None

    def start(self) -> None:
        """Mark the start of the run (the pipeline calls it when its threads start)."""
        with self._lock:
            if self._first_s is None:
                self._first_s = time.perf_counter()

    def add(self, timings_s: Mapping[str, float], detected: bool = True) -> None:
        """Count one frame: its `FrameResult.timings_s`; `detected` False for a frame that skipped the detector."""
        now = time.perf_counter()
        with self._lock:
            if self._first_s is None:
                self._first_s = now
            self._last_s = now
            self.frames += 1
            self.detected_frames += int(bool(detected))
            for name, seconds in timings_s.items():
                self._sums_s[name] = self._sums_s.get(name, 0.0) + float(seconds)
                self._counts[name] = self._counts.get(name, 0) + 1

    @property
    def wall_s(self) -> float:
        with self._lock:
            if self._first_s is None or self._last_s is None:
                return 0.0
            return self._last_s - self._first_s

    def as_dict(self) -> dict:
        """{"frames", "detected_frames", "wall_s", "fps", "stage_ms_per_frame": {...}, "wait_ms_per_frame": {...}}.

        A stage's time is averaged over all frames (a detector that ran on one
        frame in five costs a fifth of its call per frame), so the stages add
        up to the work done per frame.
        """
        wall_s = self.wall_s
        with self._lock:
            frames = self.frames
            names = sorted(self._sums_s, key=_order)
            per_frame = {name: 1000.0 * self._sums_s[name] / frames for name in names} if frames else {}
        stages = {name: round(value, 3) for name, value in per_frame.items() if not name.startswith("wait_")}
        waits = {name[len("wait_"):]: round(value, 3) for name, value in per_frame.items() if name.startswith("wait_")}
        return {
            "frames": frames,
            "detected_frames": self.detected_frames,
            "wall_s": round(wall_s, 3),
            "fps": round(frames / wall_s, 3) if wall_s > 0 else None,
            "stage_ms_per_frame": stages,
            "wait_ms_per_frame": waits,
        }

    def lines(self, title: str = "profile") -> list[str]:
        """The table `--profile` prints."""
        return profile_lines(self.as_dict(), title)


def profile_lines(summary: dict, title: str = "profile") -> list[str]:
    """The `--profile` table of a `PipelineProfile.as_dict()` summary."""
    fps = f"{summary['fps']:.2f} fps" if summary["fps"] else "fps n/a"
    lines = [f"{title}: {summary['frames']} frames ({summary['detected_frames']} detected) in "
             f"{summary['wall_s']:.2f} s, {fps}",
             f"  {'stage':<12} {'ms/frame':>9} {'queue wait ms/frame':>20}"]
    waits = summary["wait_ms_per_frame"]
    for name, value in summary["stage_ms_per_frame"].items():
        label = f"  {name}" if name in POSE_PARTS else name
        wait = waits.get(name)
        lines.append(f"  {label:<12} {value:>9.2f} {'' if wait is None else f'{wait:>20.2f}'}".rstrip())
    for name, value in waits.items():
        if name not in summary["stage_ms_per_frame"]:
            lines.append(f"  {name:<12} {'':>9} {value:>20.2f}")
    return lines


def merge_profiles(summaries: list[dict]) -> dict:
    """One `as_dict()` summary for several runs (the videos of a batch, done by any number of workers).

    Frames and wall seconds add up; per-frame stage and wait times are the
    frame-weighted means, as if one profile had seen every frame.
    """
    frames = sum(summary["frames"] for summary in summaries)
    wall_s = sum(summary["wall_s"] for summary in summaries)

    def mean(key: str) -> dict:
        totals: dict[str, float] = {}
        for summary in summaries:
            for name, value in summary[key].items():
                totals[name] = totals.get(name, 0.0) + value * summary["frames"]
        return {name: round(total / frames, 3) for name, total in totals.items()} if frames else {}

    return {
        "frames": frames,
        "detected_frames": sum(summary["detected_frames"] for summary in summaries),
        "wall_s": round(wall_s, 3),
        "fps": round(frames / wall_s, 3) if wall_s > 0 else None,
        "stage_ms_per_frame": mean("stage_ms_per_frame"),
        "wait_ms_per_frame": mean("wait_ms_per_frame"),
    }


def _order(name: str) -> tuple[int, str]:
    base = name[len("wait_"):] if name.startswith("wait_") else name
    return (STAGE_ORDER.index(base) if base in STAGE_ORDER else len(STAGE_ORDER), name)
