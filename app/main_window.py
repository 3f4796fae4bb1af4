"""The main window: video view, control panel, status line, error banner, shortcuts.

The window owns at most one `PipelineWorker` (the running source) and one
`ModelLoader`. It only paints and routes requests: opening a source stops the
old worker and starts a new one; a newly loaded model is handed to the
running worker (same joints) or restarts it (different joints).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import QApplication, QHBoxLayout, QLabel, QMainWindow, QProgressBar, QPushButton, QScrollArea, QVBoxLayout, QWidget

from app.controls import ControlPanel, TrackerOption
from app.model_loader import ModelLoader, Models, with_pose_model
from app.settings import SharedSettings, ViewSettings
from app.video_view import VideoView
from app.worker import STAGES, PipelineFactory, PipelineWorker, TrackerFactory, VideoFrame, default_pipeline_factory, default_tracker_factory
from pipeline.capture import is_stream_url
from core.types import Detections, Frame, FrameResult

LOG = logging.getLogger(__name__)

STOP_TIMEOUT_S = 1.0
DEFAULT_RECORDING_FPS = 30.0


def source_kind(source: str) -> str:
    """"camera", "stream" or "file" (a video file or a folder of frames)."""
    if source.isdigit():
        return "camera"
    if is_stream_url(source):
        return "stream"
    return "file"


def check_source(source: str) -> str | None:
    """A message when `source` is plainly unusable (a missing file), else None.

    Cameras and streams can only be checked by opening them, which the worker does.
    """
    if source_kind(source) == "file" and not Path(source).exists():
        return f"Cannot open {source}: no such file or folder."
    return None


def file_fps(source: str) -> float:
    """The frame rate a video file announces (0 when unknown or not a video file)."""
    if source_kind(source) != "file" or not Path(source).is_file():
        return 0.0
    capture = cv2.VideoCapture(source)
    try:
        return float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()


def poses_only(frame: VideoFrame) -> FrameResult:
    """The frame's result without its pixels: the shown poses, for the pose export.

    The image is a read-only zero-stride view of one black pixel with the
    frame's shape, so the export knows the frame size while the history of a
    long session costs no image memory.
    """
    result = frame.result
    placeholder = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), result.frame.image.shape)
    light_frame = Frame(result.frame.index, result.frame.timestamp_s, placeholder, result.frame.source, result.frame.path)
    return FrameResult(light_frame, Detections.empty(), frame.shown, dict(result.timings_s), result.dropped_frames)


class MainWindow(QMainWindow):
    """The application window.

    Args:
        model_args: the parsed pose/detector options (`add_pose_arguments`,
            `add_detector_arguments`); model changes copy and edit them.
        source: what to open once the models are loaded (None: nothing).
        output_dir: where recordings, snapshots and exports go.
        settings: initial live options.
        loader: builds models in the background (tests pass one with a fake builder).
        pipeline_factory, tracker_factory: the seams to the pipeline and tracker.
        tracker_options: the editable tracker options (None: from `tracker.PoseTracker`).
        model_choices: weights names offered in the model list (None: the registry).
        exit_after_frames: quit (status 0) after this many frames were shown.
        screenshot: with `exit_after_frames`, save a picture of the window here first.

    Signals:
        frame_displayed(VideoFrame): a frame was handed to the view (for tools and tests).
    """

    frame_displayed = pyqtSignal(object)

    def __init__(
        self,
        model_args: argparse.Namespace,
        source: str | None,
        *,
        output_dir: str | os.PathLike = "out/gui",
        settings: ViewSettings | None = None,
        loader: ModelLoader | None = None,
        pipeline_factory: PipelineFactory = default_pipeline_factory,
        tracker_factory: TrackerFactory = default_tracker_factory,
        tracker_options: list[TrackerOption] | None = None,
        model_choices: list[str] | None = None,
        exit_after_frames: int | None = None,
        screenshot: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("hrtrack: pose tracking")
        self._model_args = model_args
        self._output_dir = Path(output_dir)
        self._settings = SharedSettings(settings or ViewSettings())
        self._pipeline_factory = pipeline_factory
        self._tracker_factory = tracker_factory
        self._exit_after_frames = exit_after_frames
        self._screenshot = Path(screenshot) if screenshot else None
        self._finishing = False

        self.models: Models | None = None
        self.worker: PipelineWorker | None = None
        self.source: str | None = None
        self._pending_source = source
        self._source_fps = 0.0
        self._recording = False
        self.frames_shown = 0
        self.last_frame: VideoFrame | None = None
        self.pose_history: list[FrameResult] = []

        if tracker_options is None:
            from app.controls import default_tracker_options_class, tracker_options_of

            tracker_options = tracker_options_of(default_tracker_options_class())
        if model_choices is None:
            model_choices = _registry_names()
        self._build_ui(model_choices, tracker_options)
        self._build_actions()

        self._loader = loader or ModelLoader(parent=self)
        self._loader.progress.connect(self._on_model_progress)
        self._loader.loaded.connect(self._on_models_loaded)
        self._loader.failed.connect(self._on_models_failed)
        self.view.set_message("Loading the models…")
        self._load_models(model_args)

    # ---- layout ---------------------------------------------------------------------

    def _build_ui(self, model_choices: list[str], tracker_options: list[TrackerOption]) -> None:
        self.view = VideoView()
        self.error_banner = QLabel()
        self.error_banner.setWordWrap(True)
        self.error_banner.setStyleSheet("background: #b00020; color: white; padding: 6px; font-weight: bold;")
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.clear_error)
        self._error_row = QWidget()
        row = QHBoxLayout(self._error_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.error_banner, 1)
        row.addWidget(dismiss)
        self._error_row.hide()

        args = self._model_args
        self.controls = ControlPanel(
            self._settings.get(), model_choices,
            current_weights=str(getattr(args, "pose_weights", None) or ""),
            current_config=str(getattr(args, "pose_config", None) or ""),
            tracker_options=tracker_options,
        )
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.controls.sizeHint().width() + 20)

        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._error_row)
        column.addWidget(self.view, 1)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addWidget(left, 1)
        layout.addWidget(scroll)
        self.setCentralWidget(central)

        self.status_label = QLabel("starting")
        self.statusBar().addWidget(self.status_label, 1)
        # Model loading shows here too, whichever tab of the panel is open.
        self.load_progress = QProgressBar()
        self.load_progress.setRange(0, 100)
        self.load_progress.setMaximumWidth(220)
        self.load_progress.setFormat("loading model %p%")
        self.load_progress.hide()
        self.statusBar().addPermanentWidget(self.load_progress)

        self.controls.source_requested.connect(self.open_source)
        self.controls.pause_toggled.connect(self.set_paused)
        self.controls.step_requested.connect(self.step)
        self.controls.settings_changed.connect(self.update_settings)
        self.controls.model_requested.connect(self.request_model)
        self.controls.record_toggled.connect(self.set_recording)
        self.controls.snapshot_requested.connect(self.save_snapshot)
        self.controls.export_requested.connect(self.export_poses)

    def _build_actions(self) -> None:
        def action(text: str, keys: str | QKeySequence.StandardKey, slot: Callable[[], Any]) -> QAction:
            act = QAction(text, self)
            act.setShortcut(QKeySequence(keys))
            # Window-wide, so the shortcut works whichever control has the focus.
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.actions_by_name = {
            "pause": action("Pause / play", "Space", self.toggle_pause),
            "step": action("Step one frame", "Right", self.step),
            "record": action("Record", "R", self.toggle_recording),
            "snapshot": action("Snapshot", "S", self.save_snapshot),
            "export": action("Export poses", "E", self.export_poses),
            "open": action("Open file", "O", self.controls.choose_file),
            "quit": action("Quit", "Q", self.close),
        }

    # ---- models ---------------------------------------------------------------------

    def _load_models(self, args: argparse.Namespace) -> None:
        self._on_model_progress(0, "loading…")
        self._loader.load(args)

    def _on_model_progress(self, percent: int, step: str) -> None:
        self.controls.show_model_progress(percent, step)
        self.load_progress.setValue(percent)
        self.load_progress.setToolTip(step)
        self.load_progress.show()

    def request_model(self, pose_config: str, pose_weights: str) -> None:
        """Load another pose model in the background; the current one runs until it is ready."""
        if not pose_config and not pose_weights:
            self.show_error("Choose a pose model (weights name or path) first.")
            return
        self._requested_args = with_pose_model(self._model_args, pose_config or None, pose_weights or None)
        self._load_models(self._requested_args)

    def _on_models_loaded(self, models: Models) -> None:
        previous, self.models = self.models, models
        self._model_args = getattr(self, "_requested_args", self._model_args)
        self.controls.model_done(f"Running {models.label} on {models.device}")
        self.load_progress.hide()
        if previous is None:
            source, self._pending_source = self._pending_source, None
            if source is not None:
                self.open_source(source)
            else:
                self.view.set_message("Open a camera, a file or a URL")
        elif self.worker is not None and self.worker.isRunning():
            if previous.num_joints == models.num_joints:
                self.worker.set_models(models)
            else:
                # Another skeleton: the tracker and the pipeline must start over.
                self.open_source(self.source)

    def _on_models_failed(self, message: str) -> None:
        running = f" Still running {self.models.label}." if self.models else ""
        self.controls.model_done(message)
        self.load_progress.hide()
        self.show_error(message + running)
        if self.models is None:
            self.view.clear("No model loaded")
            self._finish_if_scripted(failed=True)

    # ---- source and playback --------------------------------------------------------

    def open_source(self, source: str) -> None:
        """Stop what is running and start `source` (camera index, file, folder or URL)."""
        if self.models is None:
            self._pending_source = source
            return
        self.stop_worker()
        problem = check_source(source)
        if problem:
            self.show_error(problem)
            self.view.clear("No video")
            self._finish_if_scripted(failed=True)
            return
        self.clear_error()
        self.source = source
        self._source_fps = file_fps(source)
        self.frames_shown = 0
        self.last_frame = None
        self.pose_history = []
        worker = PipelineWorker(
            source, self.models, self._settings,
            pipeline_factory=self._pipeline_factory, tracker_factory=self._tracker_factory,
            start_paused=self.controls.pause_button.isChecked(), parent=self,
        )
        worker.frame_ready.connect(self._on_frame)
        worker.failed.connect(self._on_worker_failed)
        worker.source_ended.connect(self._on_source_ended)
        worker.recording_changed.connect(self._on_recording_changed)
        worker.finished.connect(self._on_worker_finished)
        self.worker = worker
        self.controls.set_step_enabled(source_kind(source) == "file" and self.controls.pause_button.isChecked())
        self.view.set_message(f"Opening {source}…")
        self.status_label.setText(f"opening {source}")
        worker.start()

    def stop_worker(self) -> None:
        worker, self.worker = self.worker, None
        if worker is None:
            return
        for signal in (worker.frame_ready, worker.failed, worker.source_ended):
            signal.disconnect()
        if not worker.stop_and_wait(STOP_TIMEOUT_S):
            # Still finishing a call: keep the QThread alive past this window
            # (destroying a running QThread aborts the process); it deletes itself.
            worker.setParent(QApplication.instance())
            worker.finished.connect(worker.deleteLater)
        # Recording ends with the worker (its "saved" signal still arrives).
        self._set_recording_state(False)

    def _on_worker_finished(self) -> None:
        worker = self.sender()
        if worker is self.worker:
            self.worker = None
            self._set_recording_state(False)
        # Queued signals it sent before finishing are already in the event queue.
        worker.deleteLater()

    def set_paused(self, paused: bool) -> None:
        self.controls.set_paused(paused)
        if self.worker is not None:
            self.worker.set_paused(paused)
        self.controls.set_step_enabled(paused and self.source is not None and source_kind(self.source) == "file")
        if paused:
            self.status_label.setText("paused — " + self.status_label.text().removeprefix("paused — "))

    def toggle_pause(self) -> None:
        self.set_paused(not self.controls.pause_button.isChecked())

    def step(self) -> None:
        """One frame forward (files only): pauses first when playing."""
        if self.worker is None or self.source is None or source_kind(self.source) != "file":
            return
        if not self.controls.pause_button.isChecked():
            self.set_paused(True)
            return
        self.worker.step()

    def update_settings(self, changes: dict[str, Any]) -> None:
        try:
            self._settings.update(**changes)
        except ValueError as error:
            self.show_error(str(error))

    @property
    def settings(self) -> ViewSettings:
        return self._settings.get()

    # ---- frames ---------------------------------------------------------------------

    def _on_frame(self, frame: VideoFrame) -> None:
        worker = self.sender()
        self.view.set_frame(frame.image, frame.buffer)
        self.last_frame = frame
        self.status_label.setText(self._status_text(frame))
        if frame.redraw:
            worker.frame_shown()
            return
        self.frames_shown += 1
        self.pose_history.append(poses_only(frame))
        if self._exit_after_frames is not None and self.frames_shown >= self._exit_after_frames:
            # No frame_shown(): the worker holds the next frame, so the picture shows frame N.
            self._finish_if_scripted(failed=False)
        elif isinstance(worker, PipelineWorker):
            worker.frame_shown()
        self.frame_displayed.emit(frame)

    def _status_text(self, frame: VideoFrame) -> str:
        latency = " · ".join(f"{stage} {frame.timings_ms.get(stage, 0.0):.1f}" for stage in STAGES)
        paused = "paused — " if self.controls.pause_button.isChecked() else ""
        recording = " | ● REC" if self._recording else ""
        model = f" {self.models.label}" if self.models else ""
        return (f"{paused}{frame.fps:.1f} fps | latency ms: {latency} | people {len(frame.shown)} | "
                f"dropped {frame.result.dropped_frames} | frame {frame.index} | {frame.device}{model}{recording}")

    def _on_worker_failed(self, message: str) -> None:
        self.show_error(message)
        if self.last_frame is None:
            self.view.clear("No video")
        self._finish_if_scripted(failed=True)

    def _on_source_ended(self) -> None:
        if not self._finishing:
            self.status_label.setText("end of video — " + self.status_label.text())
        if self.last_frame is None:
            self.view.clear(f"{self.source}: no frames")
        self._finish_if_scripted(failed=False)

    # ---- outputs --------------------------------------------------------------------

    def _output_path(self, prefix: str, suffix: str) -> Path:
        stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        self._output_dir.mkdir(parents=True, exist_ok=True)
        return self._output_dir / f"{prefix}_{stamp}{suffix}"

    def set_recording(self, recording: bool) -> None:
        if recording == self._recording:
            return
        if self.worker is None or not self.worker.isRunning():
            self.controls.set_recording(False)
            self.show_error("Nothing to record: open a camera, a file or a URL first.")
            return
        if recording:
            fps = self._source_fps or (self.last_frame.fps if self.last_frame and self.last_frame.fps > 0
                                       else DEFAULT_RECORDING_FPS)
            self.worker.start_recording(self._output_path("recording", ".mp4"), fps)
            self._set_recording_state(True)
        else:
            self.worker.stop_recording()

    def toggle_recording(self) -> None:
        self.set_recording(not self._recording)

    def _set_recording_state(self, recording: bool) -> None:
        self._recording = recording
        self.controls.set_recording(recording)

    def _on_recording_changed(self, active: bool, detail: str) -> None:
        if self.sender() is self.worker:
            self._set_recording_state(active)
        if active:
            self.statusBar().showMessage(f"recording to {detail}", 3000)
        elif detail.endswith(".mp4"):
            self.statusBar().showMessage(f"recording saved: {detail}", 5000)
            self.last_recording = Path(detail)
        else:
            self.show_error(detail)

    def save_snapshot(self) -> Path | None:
        """Save the annotated frame on screen as PNG; returns the path (None without a frame)."""
        image = self.view.image
        if image is None:
            self.show_error("No frame to save yet.")
            return None
        path = self._output_path("snapshot", ".png")
        if not image.save(str(path)):
            self.show_error(f"Could not write the snapshot {path}")
            return None
        self.statusBar().showMessage(f"snapshot saved: {path}", 5000)
        return path

    def export_poses(self) -> Path | None:
        """Write the tracked poses shown so far as `hrtrack.poses` JSON (docs/output_format.md)."""
        from pipeline.sinks import JsonPosesSink

        if not self.pose_history:
            self.show_error("No poses to export yet.")
            return None
        path = self._output_path("poses", ".json")
        estimator = self.models.estimator if self.models else None
        try:
            sink = JsonPosesSink(path, source=self.source or "",
                                 keypoint_names=list(getattr(estimator, "joint_names", ()) or ()),
                                 skeleton=list(getattr(estimator, "skeleton", ()) or ()), fps=self._source_fps)
            for result in self.pose_history:
                sink.write(result)
            sink.close(complete=True)
        except OSError as error:
            self.show_error(f"Could not write {path}: {error}")
            return None
        self.statusBar().showMessage(f"{len(self.pose_history)} frames of poses exported: {path}", 5000)
        return path

    # ---- errors, scripted runs, closing ---------------------------------------------

    def show_error(self, message: str) -> None:
        LOG.warning("%s", message)
        self.error_banner.setText(message)
        self._error_row.show()
        self.statusBar().showMessage(message, 10000)

    def clear_error(self) -> None:
        self.error_banner.clear()
        self._error_row.hide()

    @property
    def error_text(self) -> str:
        return self.error_banner.text() if self._error_row.isVisibleTo(self) else ""

    def _finish_if_scripted(self, failed: bool) -> None:
        """In `--exit-after-frames` mode: save the screenshot and quit (status 1 on failure)."""
        if self._exit_after_frames is None or self._finishing:
            return
        self._finishing = True
        # Let the last frame and status text paint before the window is grabbed.
        QTimer.singleShot(50, lambda: self._take_screenshot_and_quit(1 if failed else 0))

    def _take_screenshot_and_quit(self, status: int) -> None:
        if self._screenshot is not None:
            self._screenshot.parent.mkdir(parents=True, exist_ok=True)
            if not self.grab().save(str(self._screenshot)):
                LOG.error("could not write the screenshot %s", self._screenshot)
                status = 1
            else:
                LOG.info("screenshot saved: %s (%d frames shown)", self._screenshot, self.frames_shown)
        self.close()
        QApplication.exit(status)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        self._loader.cancel()
        self.stop_worker()
        event.accept()


def _registry_names() -> list[str]:
    try:
        from pose.weights import REGISTRY
    except ImportError:
        return []
    return list(REGISTRY)
