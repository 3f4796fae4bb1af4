"""What the desktop app costs on top of the pipeline: fps of the app versus the pipeline alone.

Run: .venv/bin/python benchmarks/gui_overhead.py [--loops 12] [--repeats 3] [--json out.json]
     [pose/detector options of `main.py gui`, e.g. --pose-config coco/w32_256x192 --device cuda]
     .venv/bin/python benchmarks/gui_overhead.py --docs-screenshot docs/gui.png
       (only the README pictures, docs/gui.png and docs/gui_menu.png: the window on the sample clip,
       same models and boxes, Tracks tab, track #2 highlighted, the View menu open in the second)

On the same file and the same models, four runs:

1. pipeline: `pipeline.Pipeline` with the GUI's settings (one-slot channels,
   one frame per pose batch), results consumed and dropped;
2. pipeline, batched: the same with the pipeline's own defaults (what
   `track` uses), to show what the GUI's low-latency settings cost;
3. pipeline + drawing: run 1 plus the worker's drawing step (skeletons,
   labels, trails through `pipeline.drawing`) and the QImage wrap, no window;
4. app: the real window (offscreen by default), the worker thread, signals,
   painting, the status line, until the file ends.

fps is measured between the first and the last frame out (model warm-up and
start-up excluded), median of `--repeats` runs. The file is the PoseTrack
sample clip (1280x720) decoded back and forth `--loops` times; without
`--det-file`/`--detector` the boxes of its three people come from a file (no
network). Default pose model: the tiny test HRNet with its seeded weights.
On a shared CPU the numbers move with the machine's load: compare runs made
together.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

import main as cli  # noqa: E402
from app.settings import ViewSettings  # noqa: E402
from cli.options import add_detector_arguments, add_pose_arguments  # noqa: E402
from pipeline.pipeline import Pipeline  # noqa: E402
from tracker import PoseTracker  # noqa: E402

VIDEO = ROOT / "tests/data/posetrack18_mini/videos/000001_mpiinew_test/000001_mpiinew_test.mp4"
TINY_CONFIG = ROOT / "tests/data/hrnet_reference/dev_tiny.yaml"
TINY_WEIGHTS = ROOT / "tests/data/hrnet_reference/dev_tiny_state_dict.pt"
# The three people of the sample clip: xyxy px in its 1280x720 frames, score.
PEOPLE = [(356, 270, 564, 576, 0.95), (604, 260, 840, 524, 0.9), (600, 400, 850, 530, 0.8)]

logger = logging.getLogger(__name__)


def write_looped_clip(folder: Path, loops: int) -> tuple[Path, int]:
    """The sample clip forward and backward `loops` times, as one mp4; returns (path, frames)."""
    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    if not frames:
        raise FileNotFoundError(f"{VIDEO}: no frame could be decoded")
    sequence = (frames + frames[::-1]) * loops
    path = folder / "looped.mp4"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
    for image in sequence:
        writer.write(image)
    writer.release()
    return path, len(sequence)


def write_detections(path: Path, frames: int) -> Path:
    """COCO-results boxes of the three people for every frame (image id = frame index)."""
    entries = [{"image_id": index, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
               for index in range(frames) for x1, y1, x2, y2, score in PEOPLE]
    path.write_text(json.dumps(entries))
    return path


def steady_fps(times_s: list[float]) -> float:
    """Frames per second between the first and the last frame out."""
    if len(times_s) < 2 or times_s[-1] <= times_s[0]:
        return 0.0
    return (len(times_s) - 1) / (times_s[-1] - times_s[0])


def run_pipeline(source: str, models, tracker_factory, *, draw: bool, gui_settings: bool) -> float:
    from app.video_view import image_from_bgr  # noqa: PLC0415 - Qt
    from app.worker import FrameAnnotator, filter_poses  # noqa: PLC0415 - Qt

    options = {"queue_size": 1, "pose_batch_frames": 1} if gui_settings else {}
    pipeline = Pipeline(source, detector=models.detector, estimator=models.estimator, tracker=tracker_factory(),
                        **options)
    annotator = FrameAnnotator() if draw else None
    settings = ViewSettings(show_trails=True)
    skeleton = getattr(models.estimator, "skeleton", ())
    times = []
    for result in pipeline.run():
        if annotator is not None:
            image_from_bgr(annotator(result.frame.image, filter_poses(result.poses, settings.detection_threshold),
                                     skeleton, settings))
        times.append(time.perf_counter())
    return steady_fps(times)


def run_app(source: str, args: argparse.Namespace, models, expected_frames: int,
            drawing_ms: list[float] | None = None, pose_ms: list[float] | None = None) -> float:
    """fps of the window playing `source` to its end; each frame's drawing and pose milliseconds go to the lists."""
    from PyQt6.QtWidgets import QApplication  # noqa: PLC0415 - Qt

    from app.main_window import MainWindow  # noqa: PLC0415 - Qt
    from app.model_loader import ModelLoader  # noqa: PLC0415 - Qt
    from app.preferences import Preferences  # noqa: PLC0415 - Qt

    app = QApplication.instance() or QApplication(sys.argv[:1])
    loader = ModelLoader(builder=lambda _args, progress: models)
    with tempfile.TemporaryDirectory() as output_dir:
        # Every frame as fast as the models allow (files otherwise play at their frame rate),
        # and none of the person's remembered settings.
        window = MainWindow(args, source, output_dir=output_dir, loader=loader, model_choices=[],
                            settings=ViewSettings(show_trails=True), playback_speed=None,
                            preferences=Preferences(Path(output_dir) / "gui.conf"))
        window.resize(1280, 720)
        window.show()
        times: list[float] = []
        finished: list[bool] = []

        def on_frame(frame) -> None:
            times.append(time.perf_counter())
            if drawing_ms is not None:
                drawing_ms.append(frame.timings_ms["drawing"])
            if pose_ms is not None:
                pose_ms.append(frame.timings_ms["pose"])

        window.frame_displayed.connect(on_frame)
        deadline = time.monotonic() + 600
        while window.worker is None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.001)
        worker = window.worker
        worker.source_ended.connect(lambda: finished.append(True))
        worker.failed.connect(lambda message: finished.append(False) or logger.error("%s", message))
        while not finished and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.0005)
        app.processEvents()
        window.close()
        # The window closes for real once its threads have ended.
        while not window.is_shut_down and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.001)
    if len(times) != expected_frames:
        logger.warning("the app showed %d of %d frames", len(times), expected_frames)
    return steady_fps(times)


def docs_screenshot(path: str, args: argparse.Namespace, folder: Path) -> int:
    """The README pictures of the window on the sample clip: PATH, and PATH's stem + "_menu" with the View menu open.

    The window (offscreen) steps to the clip's last frame, shows the Tracks
    tab with track #2 highlighted, and is grabbed; the second picture adds
    the open View menu (a popup is a window of its own, so it is grabbed and
    painted on).
    """
    from PyQt6.QtGui import QPainter  # noqa: PLC0415 - Qt
    from PyQt6.QtWidgets import QApplication  # noqa: PLC0415 - Qt

    from app.main_window import MainWindow  # noqa: PLC0415 - Qt
    from app.preferences import Preferences  # noqa: PLC0415 - Qt

    argv = ["gui", "--source", str(VIDEO), "--pose-config", str(args.pose_config),
            "--det-file", str(args.det_file or write_detections(folder / "detections.json", 5))]
    if args.pose_weights:
        argv += ["--pose-weights", str(args.pose_weights)]
    if args.device:
        argv += ["--device", args.device]
    gui_args = cli.build_parser("gui").parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(gui_args, str(VIDEO), output_dir=folder / "out", preferences=Preferences(folder / "gui.conf"),
                        settings=ViewSettings(keypoint_threshold=gui_args.keypoint_threshold))
    window.set_paused(True)
    window.resize(1280, 720)
    window.show()

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 300
        while not condition():
            if time.monotonic() > deadline or window.error_text:
                raise RuntimeError(f"docs screenshot: no {what} ({window.error_text or 'timed out'})")
            app.processEvents()
            time.sleep(0.005)

    wait_for(lambda: window.frames_shown == 1, "first frame")
    for shown in range(2, 6):
        window.step()
        wait_for(lambda shown=shown: window.frames_shown == shown, f"frame {shown}")
    window.controls.tabs.setCurrentWidget(window.controls.track_list)
    window.controls.track_list.toggle(2)
    wait_for(lambda: window.last_frame.redraw, "redrawn frame")
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    picture = window.grab()
    ok = picture.save(path)
    bar = window.menuBar()
    view = next(action for action in bar.actions() if action.text().replace("&", "") == "View")
    corner = bar.mapTo(window, bar.actionGeometry(view).bottomLeft())
    view.menu().popup(window.mapToGlobal(corner))
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    painter = QPainter(picture)
    painter.drawPixmap(corner, view.menu().grab())
    painter.end()
    view.menu().close()
    menu_path = Path(path).with_name(Path(path).stem + "_menu.png")
    ok = picture.save(str(menu_path)) and ok
    window.close()
    wait_for(lambda: window.is_shut_down, "shutdown")
    logger.warning("saved %s and %s", path, menu_path)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=12, help="times the clip is played back and forth (10 frames each)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; the median is reported")
    parser.add_argument("--visible", action="store_true", help="show the window (default: offscreen)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--docs-screenshot", metavar="PATH",
                        help="only save the README screenshots of the window (PATH and PATH's stem + _menu.png)")
    add_pose_arguments(parser)
    add_detector_arguments(parser)
    parser.set_defaults(pose_config=str(TINY_CONFIG))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.visible:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.pose_config == str(TINY_CONFIG) and args.pose_weights is None:
        args.pose_weights = str(TINY_WEIGHTS)

    if args.docs_screenshot:
        with tempfile.TemporaryDirectory() as scratch:
            return docs_screenshot(args.docs_screenshot, args, Path(scratch))

    from app.model_loader import build_models  # noqa: PLC0415 - Qt

    with tempfile.TemporaryDirectory() as scratch:
        clip, frames = write_looped_clip(Path(scratch), args.loops)
        if args.det_file is None and args.detector is None and args.gt_boxes is None:
            args.det_file = str(write_detections(Path(scratch) / "detections.json", frames))
        models = build_models(args, lambda percent, step: None)
        drawing_ms: list[float] = []
        runs = {
            "pipeline": lambda: run_pipeline(str(clip), models, PoseTracker, draw=False, gui_settings=True),
            "pipeline_batched": lambda: run_pipeline(str(clip), models, PoseTracker, draw=False, gui_settings=False),
            "pipeline_and_drawing": lambda: run_pipeline(str(clip), models, PoseTracker, draw=True, gui_settings=True),
            "app": lambda: run_app(str(clip), args, models, frames, drawing_ms),
        }
        fps: dict[str, list[float]] = {name: [] for name in runs}
        # Interleaved, so a change in the machine's load hits every kind alike.
        for _ in range(args.repeats):
            for name, run in runs.items():
                fps[name].append(run())
    medians = {name: statistics.median(values) for name, values in fps.items()}
    report = {
        "device": models.device, "pose_model": models.label, "frames": frames, "frame_size": "1280x720",
        "people_per_frame": len(PEOPLE), "fps_median": medians, "fps_runs": fps,
        "app_vs_pipeline": medians["app"] / medians["pipeline"] if medians["pipeline"] else None,
        "app_drawing_ms_median": statistics.median(drawing_ms) if drawing_ms else None,
    }
    print(f"{frames} frames 1280x720, {len(PEOPLE)} people, {models.label} on {models.device}")
    for name, value in medians.items():
        runs_text = ", ".join(f"{v:.1f}" for v in fps[name])
        print(f"  {name:22s} {value:7.1f} fps   (runs: {runs_text})")
    if report["app_vs_pipeline"] is not None:
        print(f"  app / pipeline: {report['app_vs_pipeline']:.2f}")
    if drawing_ms:
        print(f"  drawing in the worker: {report['app_drawing_ms_median']:.1f} ms per frame (median)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
