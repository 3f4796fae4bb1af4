"""The main window: video view, control panel, status line, error banner, shortcuts.

The window owns at most one running `PipelineWorker` (the source on screen)
and one `ModelLoader`. It only paints and routes requests: opening a source
stops the old worker and starts a new one (seeking in a file is the running
worker's, `PipelineWorker.seek`, unless it has ended); a newly
loaded model is handed to the running worker (same keypoints) or restarts it
(different keypoints).

Nothing here waits for a thread. A stopped worker is kept (referenced, never
destroyed) until its `finished` signal arrives, and the next worker starts only
then, so two pipelines never share the models. Closing hides the window at
once, stops everything and closes for real when the last thread has ended
(`shutdown_finished`); `exec_window` runs the event loop until then, so the
process never exits, or destroys a QThread, while a model call is in flight.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import logging
import os
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from PyQt6.QtCore import QMimeData, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.actions import build_actions, shortcut_list_html
from app.controls import ControlPanel, TrackerOption, default_tracker_options_class, tracker_options_of
from app.errors import DETAILS_SEPARATOR, full_stop, split_message, with_details
from app.focus import FocusReturn, WheelOnlyWhenFocused
from app.model_loader import ModelLoader, ModelRequest, LoadedModels, describe_detector, with_models
from app.preferences import Preferences
from app.process_exit import CloseOnSignals, DestroyedWindowWatch
from app.recent_frames import RecentFrames
from app.settings import SharedSettings, ViewSettings
from app.timeline import Timeline
from app.video_view import ElidedLabel, MessageLabel, VideoView
from app.worker import (
    STAGES,
    PipelineFactory,
    PipelineWorker,
    TrackerFactory,
    VideoFrame,
    default_pipeline_factory,
    default_tracker_factory,
)
from core.types import Detections, Frame, FrameResult
from pipeline.capture import IMAGE_EXTENSIONS, is_stream_url, list_images
from pipeline.sinks import JsonPosesSink
from pose.weights import REGISTRY

logger = logging.getLogger(__name__)

DEFAULT_RECORDING_FPS = 30.0
_TITLE = "hrtrack: pose tracking"
# How often a closing window looks whether its threads have ended.
_SHUTDOWN_POLL_MS = 50


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


def file_info(source: str) -> tuple[float, int | None]:
    """(frame rate, frame count) of a video file or image folder; (0, None) when unknown or live."""
    if source_kind(source) != "file":
        return 0.0, None
    path = Path(source)
    if path.is_dir():
        return 0.0, len(list_images(path)) or None
    if not path.is_file() or path.suffix.lower() in IMAGE_EXTENSIONS:
        return 0.0, None
    capture = cv2.VideoCapture(source)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return float(capture.get(cv2.CAP_PROP_FPS) or 0.0), count if count > 0 else None
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


def about_text() -> str:
    """The About box: version, what it is, where the models come from."""
    try:
        version = importlib.metadata.version("hrtrack")
    except importlib.metadata.PackageNotFoundError:
        version = "(not installed: running from a source tree)"
    return (f"<h3>hrtrack {version}</h3><p>Real-time multi-person pose tracking: HRNet keypoints on the people a "
            "detector finds, with track IDs that follow each person.</p><p>Press F1 for the keyboard shortcuts. "
            "<code>main.py track</code> runs the same pipeline without a window.</p>")


def _dropped_path(mime: QMimeData) -> str | None:
    """The local file or folder of a drag, or None (several items, a web link, nothing local)."""
    urls = mime.urls() if mime.hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    return urls[0].toLocalFile() or None


class MainWindow(QMainWindow):
    """The application window.

    Args:
        model_args: the parsed pose/detector options (`add_pose_arguments`,
            `add_detector_arguments`); model changes copy and edit them.
        source: what to open once the models are loaded (None: nothing).
        output_dir: where recordings, snapshots and exports go (None: the
            folder chosen last time, else out/gui).
        settings: initial live options.
        preferences: what the window remembers between runs (None: the
            per-user QSettings; tests pass one on a temporary file).
        playback_speed: files play at their frame rate times this (one of
            `app.playback.SPEEDS`); None: as fast as the models allow.
        loader: builds models in the background (tests pass one with a fake builder).
        pipeline_factory, tracker_factory: the seams to the pipeline and tracker.
        tracker_options: the editable tracker options (None: the live ones of `tracker.TrackerOptions`).
        model_choices: weights names offered in the model list (None: the registry).
        exit_after_frames: quit (status 0) after this many frames were shown.
        screenshot: with `exit_after_frames`, save a picture of the window here first.

    Signals:
        frame_displayed(VideoFrame): a frame was handed to the view (for tools and tests).
        shutdown_finished(): the window was closed and every thread it started has ended.
    """

    frame_displayed = pyqtSignal(object)
    shutdown_finished = pyqtSignal()

    def __init__(
        self,
        model_args: argparse.Namespace,
        source: str | None,
        *,
        output_dir: str | os.PathLike | None = None,
        settings: ViewSettings | None = None,
        preferences: Preferences | None = None,
        playback_speed: float | None = 1.0,
        loader: ModelLoader | None = None,
        pipeline_factory: PipelineFactory = default_pipeline_factory,
        tracker_factory: TrackerFactory = default_tracker_factory,
        tracker_options: list[TrackerOption] | None = None,
        model_choices: list[str] | None = None,
        exit_after_frames: int | None = None,
        screenshot: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle(_TITLE)
        self._model_args = model_args
        self._requested_args = model_args
        self.preferences = preferences or Preferences()
        self._output_dir = Path(output_dir or self.preferences.output_dir() or "out/gui")
        self._settings = SharedSettings(settings or ViewSettings())
        self._pipeline_factory = pipeline_factory
        self._tracker_factory = tracker_factory
        self._exit_after_frames = exit_after_frames
        self._screenshot = Path(screenshot) if screenshot else None
        self._finishing = False
        self.exit_status = 0

        self.models: LoadedModels | None = None
        self.worker: PipelineWorker | None = None
        # Stopped workers still finishing a call, and the worker that starts once they are done.
        self._retired: list[PipelineWorker] = []
        self._waiting_worker: PipelineWorker | None = None
        self._closing = False
        self.is_shut_down = False
        self.source: str | None = None
        self._pending_source = source
        self._source_fps = 0.0
        self._frame_count: int | None = None
        self._ended = False
        # (where to, speed to restore) while a whole-video export plays.
        self._whole_export: tuple[Path, float | None] | None = None
        self.last_export: Path | None = None
        self._recording = False
        self._detector_names_known = False
        self.frames_shown = 0
        self.last_frame: VideoFrame | None = None
        # The frames just shown, for stepping back without reopening the file.
        self.recent_frames = RecentFrames()
        self.pose_history: list[FrameResult] = []

        if tracker_options is None:
            tracker_options = tracker_options_of(default_tracker_options_class())
        if model_choices is None:
            model_choices = _registry_names()
        self._build_ui(model_choices, tracker_options)
        self._wheel_guard = WheelOnlyWhenFocused(self)
        self._wheel_guard.guard(self.controls)
        self._wheel_guard.guard(self.timeline)
        self.timeline.set_speed(playback_speed)
        self._focus_return = FocusReturn(self.controls, self.view)
        self._build_actions()
        if exit_after_frames is None:
            # A scripted run (screenshots, checks) looks the same whatever was remembered.
            self.set_panel_visible(self.preferences.panel_visible())
        self.setAcceptDrops(True)
        self._shutdown_poll = QTimer(self)
        self._shutdown_poll.setInterval(_SHUTDOWN_POLL_MS)
        self._shutdown_poll.timeout.connect(self._check_shutdown)

        self._loader = loader or ModelLoader(parent=self)
        self._loader.progress.connect(self._on_model_progress)
        self._loader.loaded.connect(self._on_models_loaded)
        self._loader.failed.connect(self._on_models_failed)
        self.view.set_message("Loading the models…")
        self._load_models(model_args)

    # ---- layout ---------------------------------------------------------------------

    def _build_ui(self, model_choices: list[str], tracker_options: list[TrackerOption]) -> None:
        self.view = VideoView()
        # The banner says what to do; "Details" shows the error's full text under it.
        self.error_banner = MessageLabel()
        self.error_banner.setStyleSheet("background: #b00020; color: white; padding: 6px; font-weight: bold;")
        self.error_details = MessageLabel()
        self.error_details.setStyleSheet("background: #fde7ea; color: black; padding: 6px;")
        self.error_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_details.hide()
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details_button.toggled.connect(self.error_details.setVisible)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.clear_error)
        self._error_row = QWidget()
        rows = QVBoxLayout(self._error_row)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.setSpacing(0)
        row = QHBoxLayout()
        row.addWidget(self.error_banner, 1)
        row.addWidget(self.details_button)
        row.addWidget(dismiss)
        rows.addLayout(row)
        rows.addWidget(self.error_details)
        self._error_row.hide()
        self._error_message = ""
        self._error_origin = ""

        args = self._model_args
        self.controls = ControlPanel(
            self._settings.get(), model_choices,
            current_weights=str(getattr(args, "pose_weights", None) or ""),
            current_config=str(getattr(args, "pose_config", None) or ""),
            tracker_options=tracker_options,
            current_detector=describe_detector(args),
            current_backend=str(getattr(args, "backend", None) or ""),
        )
        self.panel = QScrollArea()
        self.panel.setWidget(self.controls)
        self.panel.setWidgetResizable(True)
        self.panel.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.panel.setMinimumWidth(self.controls.sizeHint().width() + 20)

        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._error_row)
        column.addWidget(self.view, 1)
        self.timeline = Timeline()
        column.addWidget(self.timeline)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addWidget(left, 1)
        layout.addWidget(self.panel)
        self.setCentralWidget(central)

        # Elided: a long status (an error, a long path) never widens the window.
        self.status_label = ElidedLabel("starting")
        self.statusBar().addWidget(self.status_label, 1)
        # Model loading shows here too, whichever tab of the panel is open.
        self.load_progress = QProgressBar()
        self.load_progress.setRange(0, 100)
        self.load_progress.setFormat("loading model %p%")
        # Wide enough for its whole text at 100 %, with room for the bar's frame.
        self.load_progress.setMinimumWidth(self.load_progress.fontMetrics().horizontalAdvance("loading model 100%") + 40)
        self.load_progress.hide()
        self.statusBar().addPermanentWidget(self.load_progress)

        self.controls.source_requested.connect(self.open_new_source)
        self.timeline.seek_requested.connect(self.seek)
        self.controls.track_list.highlight_requested.connect(
            lambda track_id: self.update_settings({"highlight_track_id": track_id}))
        self.view.frame_clicked.connect(self._pick_person)
        self.timeline.speed_changed.connect(self.set_speed)
        self.controls.pause_toggled.connect(self.set_paused)
        self.controls.step_requested.connect(self.step)
        self.controls.step_back_requested.connect(self.step_back)
        self.controls.settings_changed.connect(self.update_settings)
        self.controls.model_requested.connect(self.request_models)
        self.controls.record_toggled.connect(self.set_recording)
        self.controls.snapshot_requested.connect(self.save_snapshot)
        self.controls.export_requested.connect(self.export_poses)
        self.controls.export_video_requested.connect(self.export_whole_video)
        self.controls.output_dir_requested.connect(self.choose_output_dir)

    def _build_actions(self) -> None:
        """The menu bar, its shortcuts (app.actions.COMMANDS) and the switches kept in step with the panel."""
        slots = {
            "open": self.controls.choose_file, "open_folder": self.choose_folder, "open_url": self.focus_url,
            "open_camera": lambda: self.open_new_source(str(self.controls.camera_index.value())),
            "output_dir": self.choose_output_dir, "quit": self.close,
            "pause": self.toggle_pause, "step": self.step, "step_back": self.step_back,
            "restart": lambda: self.seek(0), "slower": lambda: self.change_speed(-1),
            "faster": lambda: self.change_speed(+1), "loop": self.timeline.loop.setChecked,
            "record": self.set_recording, "snapshot": self.save_snapshot, "export": self.export_poses,
            "export_video": self.export_whole_video,
            "boxes": self.controls.show_switches["show_boxes"].setChecked,
            "trails": self.controls.show_switches["show_trails"].setChecked,
            "labels": self.controls.show_switches["show_labels"].setChecked,
            "skeletons": self.controls.show_switches["show_skeletons"].setChecked,
            "panel": self.set_panel_visible, "tracks": self.show_track_list,
            "full_screen": self.set_full_screen, "focus_video": self._focus_return.give_back,
            "shortcuts": self.show_shortcuts, "about": self.show_about,
        }
        self.actions_by_name, menus = build_actions(self, self.menuBar(), slots)
        for name, field in (("boxes", "show_boxes"), ("trails", "show_trails"), ("labels", "show_labels"),
                            ("skeletons", "show_skeletons")):
            box = self.controls.show_switches[field]
            self.actions_by_name[name].setChecked(box.isChecked())
            box.toggled.connect(self.actions_by_name[name].setChecked)
        self.timeline.loop.toggled.connect(self.actions_by_name["loop"].setChecked)
        self.actions_by_name["panel"].setChecked(True)
        self.recent_menu = QMenu("Open &recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        menus["File"].insertMenu(self.actions_by_name["output_dir"], self.recent_menu)

    # ---- menu commands --------------------------------------------------------------

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of frames")
        if folder:
            self.open_new_source(folder)

    def focus_url(self) -> None:
        self.set_panel_visible(True)
        self.controls.url.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.controls.url.selectAll()

    def choose_output_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Where recordings, snapshots and exports go",
                                                  str(self._output_dir))
        if folder:
            self.set_output_dir(folder)

    def set_output_dir(self, folder: str | os.PathLike) -> None:
        """Recordings, snapshots and exports go to `folder` from now on (remembered)."""
        self._output_dir = Path(folder)
        self.preferences.set_output_dir(str(self._output_dir))
        self.statusBar().showMessage(f"output folder: {self._output_dir}", 5000)

    @property
    def output_dir(self) -> Path:
        return self._output_dir

    def change_speed(self, steps: int) -> None:
        """One speed choice slower (-1) or faster (+1) on the timeline's list."""
        box = self.timeline.speed
        box.setCurrentIndex(max(0, min(box.count() - 1, box.currentIndex() + steps)))

    def set_panel_visible(self, visible: bool) -> None:
        self.panel.setVisible(visible)
        self.actions_by_name["panel"].setChecked(visible)
        self.preferences.set_panel_visible(visible)

    def show_track_list(self) -> None:
        self.set_panel_visible(True)
        self.controls.tabs.setCurrentWidget(self.controls.track_list)

    def set_full_screen(self, full: bool) -> None:
        if full:
            self.showFullScreen()
        else:
            self.showNormal()
        self.actions_by_name["full_screen"].setChecked(full)

    def show_shortcuts(self) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", shortcut_list_html(self.actions_by_name),
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()
        self._dialog = box

    def show_about(self) -> None:
        QMessageBox.about(self, "About hrtrack", about_text())

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.preferences.recent_sources()
        for source in recent:
            action = self.recent_menu.addAction(source)
            action.triggered.connect(lambda _checked=False, source=source: self.open_new_source(source))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear the list", self.preferences.clear_recent_sources)
        else:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt naming)
        if _dropped_path(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt naming)
        """A video, an image or a folder of frames dropped on the window plays."""
        path = _dropped_path(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.open_new_source(path)

    def restore_geometry(self) -> bool:
        """The size and place of the last run's window; False when there is none."""
        geometry = self.preferences.geometry()
        return geometry is not None and self.restoreGeometry(geometry)

    # ---- models ---------------------------------------------------------------------

    def _load_models(self, args: argparse.Namespace) -> None:
        self._on_model_progress(0, "loading…")
        self._loader.load(args)

    def _on_model_progress(self, percent: int, step: str) -> None:
        self.controls.show_model_progress(percent, step)
        self.load_progress.setValue(percent)
        self.load_progress.setToolTip(step)
        self.load_progress.show()

    def request_models(self, request: ModelRequest) -> None:
        """Load other models in the background; the current ones run until they are ready."""
        if self._closing:
            return
        if not (request.pose_config or request.pose_weights or request.backend or request.detector or request.det_file):
            self.show_error("Choose a pose model (weights name or path) or a detector first.", origin="model")
            return
        self._requested_args = with_models(self._model_args, request)
        self._load_models(self._requested_args)

    def request_model(self, pose_config: str, pose_weights: str) -> None:
        """Load another pose model (the detector stays); see `request_models`."""
        self.request_models(ModelRequest(pose_config=pose_config, pose_weights=pose_weights))

    def _show_models_in_panel(self, args: argparse.Namespace) -> None:
        self.controls.show_models(
            weights=str(getattr(args, "pose_weights", None) or ""), config=str(getattr(args, "pose_config", None) or ""),
            backend=str(getattr(args, "backend", None) or ""), detector=describe_detector(args),
            detector_weights=str(getattr(args, "det_weights", None) or ""))

    def _offer_detectors(self) -> None:
        """Fill the detector list once torch is loaded (the first model load imports it anyway)."""
        if not self._detector_names_known:
            self._detector_names_known = True
            self.controls.set_detector_choices(_detector_names(), describe_detector(self._model_args))

    def _on_models_loaded(self, models: LoadedModels) -> None:
        previous, self.models = self.models, models
        self._model_args = self._requested_args
        self._offer_detectors()
        self._show_models_in_panel(self._model_args)
        self.controls.model_done(f"Running {models.label} on {models.device}")
        self.load_progress.hide()
        self.clear_error(origin="model")
        if previous is None:
            source, self._pending_source = self._pending_source, None
            if source is not None:
                self.open_source(source)
            else:
                self.view.set_message("Open a camera, a file or a URL")
                self.status_label.setText("ready: open a camera, a file or a URL")
        elif self.worker is not None:
            if previous.num_keypoints == models.num_keypoints and self.worker.isRunning():
                self.worker.set_models(models)
            else:
                # Another skeleton: the tracker and the pipeline must start over.
                self.open_source(self.source)

    def _on_models_failed(self, message: str) -> None:
        summary, details = split_message(message)
        self._offer_detectors()
        # The panel shows what runs, not the choice that failed.
        self._requested_args = self._model_args
        self._show_models_in_panel(self._model_args)
        self.controls.model_done(full_stop(summary))
        self.load_progress.hide()
        if self.models is not None:
            summary = f"{full_stop(summary)} Still running {self.models.label}."
        self.show_error(with_details(summary, details), origin="model")
        if self.models is None:
            self.view.clear("No model loaded: choose another model or detector in the Model tab")
            self.status_label.setText(f"no model loaded: {message}")
            self._finish_if_scripted(failed=True)

    # ---- source and playback --------------------------------------------------------

    def open_source(self, source: str, start_index: int = 0) -> None:
        """Stop what is running and start `source` (camera index, file, folder or URL) at frame `start_index`.

        The old frame leaves the screen at once; paused or not, the new
        source's first frame is shown. (`seek` keeps the frame on screen
        until the one sought arrives.)
        """
        self._start_source(source, start_index, seeking=False)

    def open_new_source(self, source: str) -> None:
        """What the person opens (a file, a URL, a camera, a dropped file): it plays from its start."""
        self._cancel_whole_export()
        if self.controls.pause_button.isChecked():
            self.controls.set_paused(False)
        self.open_source(source)

    def _start_source(self, source: str, start_index: int, seeking: bool) -> None:
        if self._closing:
            return
        if self.models is None:
            self._pending_source = source
            return
        seeking = seeking and source == self.source and self.last_frame is not None
        if seeking and self.worker is not None and self._seek_in_worker(start_index):
            self._ended = False
            self.frames_shown = 0
            self.pose_history = []
            self.recent_frames.clear()
            self.status_label.setText(f"seeking to frame {start_index + 1}…")
            return
        self.stop_worker()
        self._ended = False
        problem = check_source(source)
        if problem:
            self.source = None
            self.setWindowTitle(_TITLE)
            self._show_source_failed(problem)
            return
        if self._error_origin != "model":
            # A model problem stays until a model loads; the rest was about what played before.
            self.clear_error()
        self.source = source
        seekable = source_kind(source) == "file"
        if not seeking:
            self._source_fps, self._frame_count = file_info(source)
            self.timeline.set_source(loaded=True, seekable=seekable, frame_count=self._frame_count,
                                     fps=self._source_fps)
            self._show_source_name(source)
            # Files by their full path, so the list works from any folder.
            self.preferences.add_recent_source(str(Path(source).resolve()) if seekable else source)
        self.frames_shown = 0
        self.pose_history = []
        self.recent_frames.clear()
        paused = self.controls.pause_button.isChecked()
        worker = PipelineWorker(
            source, self.models, self._settings,
            pipeline_factory=self._pipeline_factory, tracker_factory=self._tracker_factory,
            start_index=start_index, start_paused=paused, speed=self.timeline.playback_speed, parent=self,
        )
        worker.frame_ready.connect(self._on_frame)
        worker.failed.connect(self._on_worker_failed)
        worker.source_ended.connect(self._on_source_ended)
        worker.recording_changed.connect(self._on_recording_changed)
        worker.finished.connect(self._on_worker_finished)
        self.worker = worker
        self.controls.set_source_state(loaded=True, seekable=seekable)
        if not seeking:
            self.last_frame = None
            self.view.clear(f"Opening {source}…")
        if self._retired:
            # The previous source is still finishing a model call: start when it is done.
            self._waiting_worker = worker
            self.status_label.setText(f"stopping the previous source, then opening {source}…")
        else:
            self.status_label.setText(f"seeking to frame {start_index + 1}…" if seeking else f"opening {source}…")
            worker.start()

    def _seek_in_worker(self, index: int) -> bool:
        """The running worker goes on from frame `index` of the file it has open; False when it cannot.

        It reopens the file only where the container cannot seek exactly. The
        frame on screen stays until the new one comes; it plays paused or not,
        at the speed, as the controls say now (as a new worker would).
        """
        self.worker.set_paused(self.controls.pause_button.isChecked())
        self.worker.set_speed(self.timeline.playback_speed)
        return self.worker.seek(index)

    def _show_source_failed(self, message: str) -> None:
        """The source could not be opened or stopped with an error: nothing plays, say so everywhere."""
        self.show_error(message, origin="source")
        self.status_label.setText(f"failed: {message}")
        self.controls.set_source_state(loaded=False, seekable=False)
        self.timeline.set_source(loaded=False, seekable=False)
        if self.frames_shown == 0:
            # Nothing of this source was shown: the old picture and its frame number must go.
            self.last_frame = None
            self.view.clear("No video")
        self._finish_if_scripted(failed=True)

    def _show_source_name(self, source: str) -> None:
        """The title names the source; the URL field and camera box show the one in use."""
        name = f"camera {source}" if source_kind(source) == "camera" else (
            source if source_kind(source) == "stream" else Path(source).name)
        self.setWindowTitle(f"{name} — hrtrack")
        self.controls.show_source(source, source_kind(source))

    def stop_worker(self) -> None:
        """Stop the running worker without waiting: it is kept until its thread has ended."""
        worker, self.worker = self.worker, None
        if worker is None:
            return
        for signal_ in (worker.frame_ready, worker.failed, worker.source_ended):
            signal_.disconnect()
        if worker is self._waiting_worker:
            # Never started: nothing to wait for.
            self._waiting_worker = None
            worker.deleteLater()
            return
        worker.stop()
        # Its `finished` signal removes it (a finished thread's signal is still queued).
        self._retired.append(worker)
        # Recording ends with the worker (its "saved" signal still arrives).
        self._set_recording_state(False)

    def _on_worker_finished(self) -> None:
        worker = self.sender()
        if worker in self._retired:
            self._retired.remove(worker)
        if worker is self.worker:
            self.worker = None
            self._set_recording_state(False)
        # Queued signals it sent before finishing are already in the event queue.
        worker.deleteLater()
        waiting = self._waiting_worker
        if waiting is not None and not self._retired:
            self._waiting_worker = None
            self.status_label.setText(f"opening {waiting.source}…")
            waiting.start()
        self._check_shutdown()

    def set_paused(self, paused: bool) -> None:
        if not paused and (self._ended or self._at_last_frame()) and self._is_file():
            # Play at the end of a file: from its start again.
            self.controls.set_paused(False)
            self.seek(0)
            return
        if not paused and self.recent_frames.browsing:
            # Playing goes on from the newest frame, where the pipeline is.
            self._show(self.recent_frames.to_newest())
        self.controls.set_paused(paused)
        if self.worker is not None:
            self.worker.set_paused(paused)
        if self.last_frame is not None and self.worker is not None and not self._ended:
            self.status_label.setText(self._status_text(self.last_frame))
        elif paused:
            self.status_label.setText("paused — " + self.status_label.text().removeprefix("paused — "))
        else:
            self.status_label.setText(self.status_label.text().removeprefix("paused — "))

    def set_speed(self, speed: float | None) -> None:
        """Play files at their frame rate times `speed` (None: as fast as the models allow)."""
        if self.worker is not None:
            self.worker.set_speed(speed)

    def toggle_pause(self) -> None:
        if self.controls.pause_button.isEnabled():
            self.set_paused(not self.controls.pause_button.isChecked())

    def _is_file(self) -> bool:
        return self.source is not None and source_kind(self.source) == "file"

    def _at_last_frame(self) -> bool:
        return (self.last_frame is not None and self._frame_count is not None
                and self.last_frame.index >= self._frame_count - 1)

    def step(self) -> None:
        """One frame forward (files only): pauses first when playing; after stepping back, the next kept frame."""
        if not self._is_file():
            return
        if self.worker is not None and not self.controls.pause_button.isChecked():
            self.set_paused(True)
            return
        newer = self.recent_frames.forward()
        if newer is not None:
            self._show(newer)
        elif self.worker is not None and not self._at_last_frame():
            self.worker.step()

    def step_back(self) -> None:
        """One frame back (files only), paused: a recent frame is shown again, an older one reopens the file there."""
        if not self._is_file() or self.last_frame is None:
            return
        self.set_paused(True)
        older = self.recent_frames.back()
        if older is not None:
            self._show(older)
            return
        self.seek(self.last_frame.index - 1)

    def seek(self, index: int) -> None:
        """Show frame `index` of the file (the pipeline and the tracker restart there: IDs restart).

        The running worker seeks in the file it has open; a new one opens it
        there when there is none (after the end of the file).
        """
        if not self._is_file() or self.models is None:
            return
        last = self._frame_count - 1 if self._frame_count else index
        index = max(0, min(int(index), last))
        if self.last_frame is not None and index == self.last_frame.index and self.worker is not None:
            return
        self._cancel_whole_export()
        self._start_source(self.source, index, seeking=True)

    def _pick_person(self, x: float, y: float) -> None:
        """A click on the video: highlight the person whose box holds the point (the smallest), or clear."""
        poses = self.last_frame.shown if self.last_frame is not None else None
        picked = None
        if poses is not None and len(poses):
            boxes = poses.boxes
            inside = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])
            inside &= poses.track_ids >= 0
            if inside.any():
                areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                picked = int(poses.track_ids[np.flatnonzero(inside)[np.argmin(areas[inside])]])
        self.controls.track_list.toggle(picked)

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
        if isinstance(worker, PipelineWorker) and frame.seeks < worker.seeks_requested:
            # Computed before the last seek (it was in flight): not the frame asked for.
            worker.frame_shown()
            return
        if frame.redraw:
            self.recent_frames.replace_newest(frame)
            if not self.recent_frames.browsing:
                self._show(frame)
            worker.frame_shown()
            return
        self.recent_frames.add(frame)
        self._show(frame)
        self.frames_shown += 1
        self.pose_history.append(poses_only(frame))
        if self._exit_after_frames is not None and self.frames_shown >= self._exit_after_frames:
            # No frame_shown(): the worker holds the next frame, so the picture shows frame N.
            self._finish_if_scripted(failed=False)
        elif isinstance(worker, PipelineWorker):
            worker.frame_shown()
        self.frame_displayed.emit(frame)

    def _show(self, frame: VideoFrame) -> None:
        """Put `frame` on screen: picture, status line, timeline, track list."""
        self.view.set_frame(frame.image)
        self.last_frame = frame
        self.status_label.setText(self._status_text(frame))
        self.timeline.set_position(frame.index)
        self.controls.set_at_end(self._at_last_frame())
        self.controls.track_list.show_tracks(frame.shown, self.settings.keypoint_threshold)

    def _status_text(self, frame: VideoFrame) -> str:
        """The live profile: fps, milliseconds per stage of this frame, and what is on screen."""
        latency = " · ".join(f"{stage} {frame.timings_ms.get(stage, 0.0):.1f}" for stage in STAGES)
        # Capture to display, waits between stages included, paused time left out.
        end_to_end_ms = frame.timings_ms.get("latency")
        if end_to_end_ms is not None:
            latency += f" · end to end {end_to_end_ms:.0f}"
        paused = self.controls.pause_button.isChecked()
        # While paused there is no rate to show: the last one would be stale.
        rate = "paused — – fps" if paused else f"{frame.fps:.1f} fps"
        recording = " | ● REC" if self._recording else ""
        model = f" {self.models.label}" if self.models else ""
        return (f"{rate} | latency ms: {latency} | people {len(frame.shown)} | "
                f"dropped {frame.result.dropped_frames} | frame {frame.index + 1} | {frame.device}{model}{recording}")

    def _on_worker_failed(self, message: str) -> None:
        # The status line says so too, and keeps saying it when the banner's
        # temporary copy in the status bar expires.
        self._show_source_failed(message)

    def _on_source_ended(self) -> None:
        if self.last_frame is None:
            self.view.clear(f"{self.source}: no frames")
        elif self._whole_export is not None:
            self._finish_whole_export()
        elif self._is_file() and self.timeline.loop.isChecked() and not self._finishing:
            self._start_source(self.source, 0, seeking=True)
            return
        self._ended = True
        self.controls.set_at_end(True)
        if not self._finishing:
            self.status_label.setText("end of video — " + self.status_label.text())
            if self._is_file():
                # Play (Space) starts it again: say so on the button.
                self.controls.set_paused(True)
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
            self._set_recording_state(False)
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
        self.actions_by_name["record"].setChecked(recording)

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

    def export_poses(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write the tracked poses shown since the source (re)started as `hrtrack.poses` JSON (docs/output_format.md).

        That is every frame shown since the last open or seek (frames skipped
        to keep real time are not in it); `export_whole_video` has them all.
        """
        if not self.pose_history:
            self.show_error("No poses to export yet.")
            return None
        path = Path(path) if path is not None else self._output_path("poses", ".json")
        estimator = self.models.estimator if self.models else None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            sink = JsonPosesSink(path, source=self.source or "",
                                 keypoint_names=list(getattr(estimator, "keypoint_names", ()) or ()),
                                 skeleton=list(getattr(estimator, "skeleton", ()) or ()), fps=self._source_fps)
            for result in self.pose_history:
                sink.write(result)
            sink.close(complete=True)
        except OSError as error:
            self.show_error(f"Could not write {path}: {error}")
            return None
        first, last = self.pose_history[0].frame.index + 1, self.pose_history[-1].frame.index + 1
        self.statusBar().showMessage(f"poses of {len(self.pose_history)} frames shown ({first}–{last}) exported: "
                                     f"{path}", 8000)
        self.last_export = path
        return path

    def export_whole_video(self, path: str | os.PathLike | None = None) -> None:
        """Play the file from its first frame, every frame (no skipping), and export the poses when it ends.

        Without `path`, asks where. Seeking or opening something else meanwhile cancels it.
        """
        if not self._is_file() or self.models is None:
            self.show_error("Open a video file or a folder of frames first: the whole-video export runs on a file.")
            return
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export the poses of the whole video",
                                                    str(self._output_path("poses", ".json")), "JSON (*.json)")
            if not chosen:
                return
            path = chosen
        speed = self.timeline.playback_speed
        self.timeline.set_speed(None)
        self.controls.set_paused(False)
        self._start_source(self.source, 0, seeking=True)
        self._whole_export = (Path(path), speed)
        self.statusBar().showMessage(f"exporting the whole video to {path}: every frame from the first…", 8000)

    def _cancel_whole_export(self) -> None:
        if self._whole_export is not None:
            _, speed = self._whole_export
            self._whole_export = None
            self.timeline.set_speed(speed)
            self.statusBar().showMessage("whole-video export cancelled", 5000)

    def _finish_whole_export(self) -> None:
        path, speed = self._whole_export
        self._whole_export = None
        self.timeline.set_speed(speed)
        self.export_poses(path)

    # ---- errors, scripted runs, closing ---------------------------------------------

    def show_error(self, message: str, origin: str = "") -> None:
        """Show `message` in the banner (its summary; the rest under "Details").

        `origin` ("model", "source") lets the banner go by itself once that
        problem is solved: a model loads, a source shows its first frame.
        """
        logger.warning("%s", message.replace(DETAILS_SEPARATOR, " "))
        summary, details = split_message(message)
        self._error_message, self._error_origin = message, origin
        self.error_banner.setText(summary)
        self.error_details.setText(details)
        self.details_button.setVisible(bool(details))
        self.details_button.setChecked(False)
        self._error_row.show()
        self.statusBar().showMessage(summary, 10000)

    def clear_error(self, origin: str | None = None) -> None:
        """Hide the banner (only when it came from `origin`, if given)."""
        if origin is not None and origin != self._error_origin:
            return
        self._error_message = self._error_origin = ""
        self.error_banner.setText("")
        self.error_details.setText("")
        self.details_button.setChecked(False)
        self._error_row.hide()
        self.statusBar().clearMessage()

    @property
    def error_text(self) -> str:
        """The message in the banner, details included ("" when none)."""
        return self._error_message if self._error_row.isVisibleTo(self) else ""

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
                logger.error("could not write the screenshot %s", self._screenshot)
                status = 1
            else:
                logger.info("screenshot saved: %s (%d frames shown)", self._screenshot, self.frames_shown)
        self.exit_status = status
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        """Hide at once, stop accepting work, and close for real once every thread has ended."""
        if self.is_shut_down:
            event.accept()
            return
        event.ignore()
        if not self._closing:
            self._closing = True
            if self._exit_after_frames is None:
                self.preferences.set_geometry(self.saveGeometry())
                self.preferences.sync()
            self._loader.cancel()
            self.stop_worker()
            if self._waiting_worker is not None:
                self._waiting_worker.deleteLater()
                self._waiting_worker = None
            self.controls.setEnabled(False)
            self.status_label.setText("stopping… (waiting for the model call in progress)")
            self.hide()
            self._shutdown_poll.start()
            if self._retired:
                logger.info("closing: waiting for %d pipeline(s) to finish their model call", len(self._retired))
        self._check_shutdown()

    def _check_shutdown(self) -> None:
        if not self._closing or self.is_shut_down:
            return
        if self._retired or self.worker is not None or self._loader.is_loading():
            return
        self._shutdown_poll.stop()
        self.is_shut_down = True
        self.close()
        self.shutdown_finished.emit()

    def wait_until_stopped(self) -> None:
        """Block until every thread of the window has ended (after the event loop stopped early)."""
        self._loader.cancel()
        self.stop_worker()
        for worker in list(self._retired):
            worker.wait()
        self._loader.wait(timeout_s=3600.0)


def exec_window(window: MainWindow) -> int:
    """Run the event loop until `window` is closed and all its threads have ended; returns the exit status.

    The loop keeps running after the window is hidden, so the window stays
    responsive while a model call finishes and the process never exits (or
    destroys a QThread) under a running call. Ctrl-C, SIGTERM and SIGHUP
    close the window the same way, and so does the window system destroying
    it (`app.process_exit`).
    """
    app = QApplication.instance()
    app.setQuitOnLastWindowClosed(False)
    window.shutdown_finished.connect(lambda: app.exit(window.exit_status))
    watch = DestroyedWindowWatch(window)
    app.installNativeEventFilter(watch)
    try:
        with CloseOnSignals(window.close):
            status = int(app.exec())
    finally:
        app.removeNativeEventFilter(watch)
        if not window.is_shut_down:
            window.wait_until_stopped()
    return status


def _detector_names() -> list[str]:
    """The torchvision detectors the detector package can build (torch is loaded by now)."""
    try:
        from detector import supported_detector_names  # noqa: PLC0415 - imports torch and torchvision
    except ImportError as error:
        logger.warning("network detectors unavailable: %s", error)
        return []
    return supported_detector_names()


def _registry_names() -> list[str]:
    return list(REGISTRY)
