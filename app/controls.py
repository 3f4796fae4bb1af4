"""The control panel: source, playback, live thresholds, tracker options, model, outputs.

It only emits signals; the main window decides what they do. The tracker
options it offers are the `tracker.TrackerOptions` fields marked live in
`tracker.OPTION_INFO`, with their defaults, choices and help: one definition
for the command line and the window.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from dataclasses import dataclass
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model_loader import ModelRequest
from app.settings import ViewSettings
from app.track_list import TrackList
from app.video_view import MessageLabel
from pose.backends import BACKENDS
from tracker import TrackerOptions

logger = logging.getLogger(__name__)

VIDEO_FILTER = ("Videos and images (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.jpg *.jpeg *.png *.bmp *.webp);;"
                "All files (*)")
# The drawing switches of `ViewSettings`, with their check box texts.
SHOW_SWITCHES = {"show_skeletons": "Skeletons", "show_keypoints": "Keypoints", "show_labels": "ID labels",
                 "show_boxes": "Boxes", "show_trails": "Trails"}


@dataclass(frozen=True)
class TrackerOption:
    """One option of the tracker that the panel can edit.

    Attributes:
        name: the `tracker.TrackerOptions` field.
        default: its default (bool, int, float or str).
        choices: the allowed values of a text option (None for numbers and switches).
        help: what it does (the widget's tooltip).
    """

    name: str
    default: Any
    choices: tuple[str, ...] | None = None
    help: str = ""

    @property
    def label(self) -> str:
        words = self.name.replace("_", " ")
        return words[:1].upper() + words[1:]


def tracker_options_of(options_class: Any) -> list[TrackerOption]:
    """The live-editable options of a tracker options dataclass, in field order.

    Each field's `OptionInfo` (in its metadata under "info", as
    `tracker.TrackerOptions` declares them) says whether it is live, its
    choices and help; fields without one, or with a default the panel has no
    widget for, are left out.
    """
    if options_class is None or not dataclasses.is_dataclass(options_class):
        return []
    options = []
    for item in dataclasses.fields(options_class):
        info = item.metadata.get("info")
        if info is None or not info.live or item.default is dataclasses.MISSING:
            continue
        default = item.default
        if isinstance(default, str) and not (info.choices and default in info.choices):
            continue
        if isinstance(default, (bool, int, float, str)):
            options.append(TrackerOption(item.name, default, info.choices if isinstance(default, str) else None,
                                         info.help))
    return options


def default_tracker_options_class() -> Any:
    return TrackerOptions


def _tooltip(text: str) -> str:
    """A tooltip that Qt word-wraps (rich text wraps; plain text makes one line as wide as the text)."""
    return "<qt>" + html.escape(text) + "</qt>"


def _probability_box(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.0, 1.0)
    box.setSingleStep(0.05)
    box.setDecimals(2)
    box.setValue(value)
    return box


class ControlPanel(QWidget):
    """Widgets for everything the person can change while watching.

    Signals:
        source_requested(str): open this source (camera index, file or URL).
        pause_toggled(bool): True to pause.
        step_requested(): one frame forward (files, while paused).
        step_back_requested(): one frame back (files).
        settings_changed(dict): `ViewSettings` fields that changed.
        model_requested(ModelRequest): load these models ("" fields: as before).
        record_toggled(bool): start (True) or stop recording.
        snapshot_requested(), export_requested(), export_video_requested(),
        output_dir_requested().
    """

    source_requested = pyqtSignal(str)
    pause_toggled = pyqtSignal(bool)
    step_requested = pyqtSignal()
    step_back_requested = pyqtSignal()
    settings_changed = pyqtSignal(dict)
    model_requested = pyqtSignal(object)
    record_toggled = pyqtSignal(bool)
    snapshot_requested = pyqtSignal()
    export_requested = pyqtSignal()
    export_video_requested = pyqtSignal()
    output_dir_requested = pyqtSignal()

    def __init__(self, settings: ViewSettings, model_choices: list[str], current_weights: str, current_config: str,
                 tracker_options: list[TrackerOption], current_detector: str = "auto",
                 parent: QWidget | None = None, current_backend: str = "") -> None:
        super().__init__(parent)
        self._tracker_widgets: dict[str, QWidget] = {}
        self._initial_tracker_options = dict(settings.tracker_options)
        layout = QVBoxLayout(self)
        layout.addWidget(self._source_group())
        layout.addWidget(self._playback_group())
        layout.addWidget(self._output_group())
        # The less frequent settings share one area, so the panel fits a 720p window.
        self.tabs = QTabWidget()
        self.tabs.addTab(self._display_group(settings), "Display")
        if tracker_options:
            self.tabs.addTab(self._tracker_group(tracker_options, settings.tracker_options), "Tracker")
        self.track_list = TrackList()
        self.tabs.addTab(self.track_list, "Tracks")
        # The tallest page scrolls on its own, so it does not set the height of every tab (and of the panel).
        model_page = QScrollArea()
        model_page.setWidget(self._model_group(model_choices, current_weights, current_config, current_detector,
                                               current_backend))
        model_page.setWidgetResizable(True)
        model_page.setFrameShape(QFrame.Shape.NoFrame)
        model_page.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tabs.addTab(model_page, "Model")
        layout.addWidget(self.tabs)
        self._tracker_default_min_score = next(
            (option.default for option in tracker_options if option.name == "min_score"), None)
        self._update_score_hint()
        layout.addStretch(1)
        self.setMaximumWidth(360)
        self._seekable = False
        self._at_end = False
        self.set_source_state(loaded=False, seekable=False)

    # ---- groups ---------------------------------------------------------------------

    def _source_group(self) -> QGroupBox:
        group = QGroupBox("Source")
        form = QFormLayout(group)
        self.camera_index = QSpinBox()
        self.camera_index.setRange(0, 16)
        open_camera = QPushButton("Open camera")
        open_camera.clicked.connect(lambda: self.source_requested.emit(str(self.camera_index.value())))
        row = QHBoxLayout()
        row.addWidget(self.camera_index)
        row.addWidget(open_camera)
        form.addRow("Camera", row)
        open_file = QPushButton("Open file…")
        open_file.clicked.connect(self.choose_file)
        form.addRow("File", open_file)
        self.url = QLineEdit()
        self.url.setPlaceholderText("rtsp://… or http://…")
        self.url.returnPressed.connect(self._open_url)
        open_url = QPushButton("Open")
        open_url.clicked.connect(self._open_url)
        row = QHBoxLayout()
        row.addWidget(self.url)
        row.addWidget(open_url)
        form.addRow("URL", row)
        return group

    def _playback_group(self) -> QGroupBox:
        group = QGroupBox("Playback")
        column = QVBoxLayout(group)
        row = QHBoxLayout()
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pause / play (Space)")
        self.pause_button.toggled.connect(self._pause_toggled)
        self.step_back_button = QPushButton("◀ Step")
        self.step_back_button.setToolTip("One frame back (files; Left). The tracker restarts there: IDs restart.")
        self.step_back_button.clicked.connect(self.step_back_requested)
        self.step_button = QPushButton("Step ▶")
        self.step_button.setToolTip("One frame forward (files, while paused; Right)")
        self.step_button.clicked.connect(self.step_requested)
        row.addWidget(self.pause_button)
        row.addWidget(self.step_back_button)
        row.addWidget(self.step_button)
        column.addLayout(row)
        return group

    def _display_group(self, settings: ViewSettings) -> QWidget:
        group = QWidget()
        form = QFormLayout(group)
        self.detection_threshold = _probability_box(settings.detection_threshold)
        self.detection_threshold.valueChanged.connect(
            lambda value: self.settings_changed.emit({"detection_threshold": value}))
        form.addRow("Detection threshold", self.detection_threshold)
        # The tracker drops what scores under its own minimum: say so where the threshold is set.
        self.score_hint = MessageLabel("")
        self.score_hint.setStyleSheet("color: #8a5a00;")
        self.score_hint.hide()
        self.detection_threshold.valueChanged.connect(self._update_score_hint)
        form.addRow(self.score_hint)
        self.keypoint_threshold = _probability_box(settings.keypoint_threshold)
        self.keypoint_threshold.valueChanged.connect(
            lambda value: self.settings_changed.emit({"keypoint_threshold": value}))
        form.addRow("Keypoint threshold", self.keypoint_threshold)
        # What is drawn: one check box per `ViewSettings.show_*` switch, two to a row.
        self.show_switches: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        for position, (field, text) in enumerate(SHOW_SWITCHES.items()):
            box = QCheckBox(text)
            box.setChecked(getattr(settings, field))
            box.toggled.connect(lambda on, field=field: self.settings_changed.emit({field: on}))
            self.show_switches[field] = box
            grid.addWidget(box, position // 2, position % 2)
        self.show_boxes = self.show_switches["show_boxes"]
        self.show_trails = self.show_switches["show_trails"]
        form.addRow("Show", grid)
        self.trail_length = QSpinBox()
        self.trail_length.setRange(1, 300)
        self.trail_length.setValue(settings.trail_length)
        self.trail_length.setSuffix(" frames")
        self.trail_length.valueChanged.connect(lambda value: self.settings_changed.emit({"trail_length": value}))
        form.addRow("Trail length", self.trail_length)
        return group

    def _tracker_group(self, options: list[TrackerOption], current: dict[str, Any]) -> QWidget:
        group = QWidget()
        form = QFormLayout(group)
        note = MessageLabel("A change starts a new tracker: IDs restart.")
        form.addRow(note)
        for option in options:
            value = current.get(option.name, option.default)
            if option.choices is not None:
                widget = QComboBox()
                for choice in option.choices:
                    widget.addItem(choice.replace("_", " "), choice)
                if str(value) not in option.choices:  # e.g. a reid network path given on the command line
                    widget.addItem(str(value), str(value))
                widget.setCurrentIndex(max(0, widget.findData(str(value))))
                widget.currentTextChanged.connect(self._tracker_option_changed)
            elif isinstance(option.default, bool):
                widget = QCheckBox()
                widget.setChecked(bool(value))
                widget.toggled.connect(self._tracker_option_changed)
            elif isinstance(option.default, int):
                widget = QSpinBox()
                widget.setRange(0, 10_000)
                widget.setValue(int(value))
                widget.valueChanged.connect(self._tracker_option_changed)
            else:
                widget = QDoubleSpinBox()
                widget.setDecimals(3)
                widget.setRange(0.0, 1.0 if 0.0 <= option.default <= 1.0 else 10_000.0)
                widget.setSingleStep(0.05)
                widget.setValue(float(value))
                widget.valueChanged.connect(self._tracker_option_changed)
            widget.setToolTip(_tooltip(option.help + " (Options named here that the panel lacks: "
                                       "`main.py gui --tracker-option NAME=VALUE`.)"))
            self._tracker_widgets[option.name] = widget
            form.addRow(option.label, widget)
        return group

    def _model_group(self, choices: list[str], current_weights: str, current_config: str,
                     current_detector: str, current_backend: str = "") -> QWidget:
        group = QWidget()
        layout = QVBoxLayout(group)
        pose = QGroupBox("Pose model")
        form = QFormLayout(pose)
        self.model_weights = QComboBox()
        self.model_weights.setEditable(True)
        # Long checkpoint paths must not widen the panel.
        self.model_weights.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_weights.setMinimumContentsLength(14)
        self.model_weights.setToolTip(_tooltip("A registry name (see `main.py weights`) or a checkpoint path."))
        for choice in dict.fromkeys([current_weights, *choices]):
            if choice:
                self.model_weights.addItem(choice)
        self.model_weights.setCurrentText(current_weights)
        form.addRow("Weights", self.model_weights)
        self.model_config = QLineEdit(current_config)
        self.model_config.setPlaceholderText("empty: the one of the weights")
        self.model_config.setToolTip(_tooltip("An official-schema HRNet experiment YAML or a config registry "
                                              "name; empty: the config that goes with registry weights."))
        form.addRow("Config", self.model_config)
        row = QHBoxLayout()
        browse = QPushButton("Config…")
        browse.clicked.connect(self._choose_config)
        weights = QPushButton("Weights…")
        weights.clicked.connect(self._choose_weights)
        row.addWidget(browse)
        row.addWidget(weights)
        form.addRow("", row)
        self.model_backend = QComboBox()
        self.model_backend.setToolTip(_tooltip("How the pose network runs (the --backend choices). auto: the "
                                               "fastest that agrees with eager fp32; int8 trades accuracy."))
        for name, help_line in BACKENDS.items():
            self.model_backend.addItem(name)
            self.model_backend.setItemData(self.model_backend.count() - 1, _tooltip(help_line),
                                           Qt.ItemDataRole.ToolTipRole)
        self.model_backend.setCurrentText(current_backend or "auto")
        form.addRow("Backend", self.model_backend)
        layout.addWidget(pose)

        people = QGroupBox("Person detector")
        form = QFormLayout(people)
        self.detector = QComboBox()
        self.detector.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.detector.setMinimumContentsLength(14)
        self.detector.setToolTip(_tooltip("A torchvision detector ('auto': by device), or boxes read from a "
                                          "detection file."))
        self.set_detector_choices([], current_detector)
        form.addRow("Detector", self.detector)
        self.detector_weights = QLineEdit()
        self.detector_weights.setPlaceholderText("empty: the pretrained ones")
        self.detector_weights.setToolTip(_tooltip("A local state dict for the network detector (as --det-weights), "
                                                  "when the pretrained weights cannot be downloaded."))
        pick = QPushButton("…")
        pick.setToolTip("Choose a detector state dict")
        pick.clicked.connect(self._choose_detector_weights)
        row = QHBoxLayout()
        row.addWidget(self.detector_weights, 1)
        row.addWidget(pick)
        form.addRow("Weights", row)
        detections = QPushButton("Detections file…")
        detections.setToolTip(_tooltip("Boxes from a COCO-results JSON (image_id = frame index) instead of a network."))
        detections.clicked.connect(self._choose_detections)
        form.addRow("", detections)
        layout.addWidget(people)

        self.load_model_button = QPushButton("Load models")
        self.load_model_button.setToolTip(_tooltip("Load the chosen pose model and person detector; the current "
                                                   "ones run meanwhile."))
        self.load_model_button.clicked.connect(self._request_model)
        layout.addWidget(self.load_model_button)
        self.model_progress = QProgressBar()
        self.model_progress.setRange(0, 100)
        self.model_progress.setTextVisible(True)
        self.model_progress.hide()
        layout.addWidget(self.model_progress)
        self.model_status = MessageLabel("")
        layout.addWidget(self.model_status)
        return group

    def _output_group(self) -> QGroupBox:
        group = QGroupBox("Output")
        row = QHBoxLayout(group)
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the annotated video (R)")
        self.record_button.toggled.connect(self.record_toggled)
        snapshot = QPushButton("Snapshot")
        snapshot.setToolTip("Save the annotated frame on screen as PNG (S)")
        snapshot.clicked.connect(self.snapshot_requested)
        # The exports and the folder share one button with a menu.
        export = QToolButton()
        export.setText("Export")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        export.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        export.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        menu = QMenu(export)
        menu.addAction("Poses shown (E)", self.export_requested.emit).setToolTip(
            "The frames shown since the file was opened or sought, as hrtrack.poses JSON")
        menu.addAction("Poses of the whole video… (Shift+E)", self.export_video_requested.emit)
        menu.addSeparator()
        menu.addAction("Output folder…", self.output_dir_requested.emit)
        export.setMenu(menu)
        self.export_button = export
        row.addWidget(self.record_button)
        row.addWidget(snapshot)
        row.addWidget(export)
        return group

    # ---- state shown by the window --------------------------------------------------

    def tracker_options(self) -> dict[str, Any]:
        """The tracker's options: those given at start (command line) with the panel's values over them."""
        values: dict[str, Any] = dict(self._initial_tracker_options)
        for name, widget in self._tracker_widgets.items():
            if isinstance(widget, QCheckBox):
                values[name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                values[name] = widget.currentData()
            else:
                values[name] = widget.value()
        return values

    def set_detector_choices(self, names: list[str], current: str) -> None:
        """Offer "auto", the network detectors `names` and the detection file in use, with `current` selected."""
        self.detector.blockSignals(True)
        self.detector.clear()
        for name in dict.fromkeys(["auto", *names, current]):
            self.detector.addItem(name)
        self.detector.setCurrentText(current)
        self.detector.blockSignals(False)

    def set_source_state(self, *, loaded: bool, seekable: bool) -> None:
        """Enable what applies: pause needs a source, stepping a file."""
        self.pause_button.setEnabled(loaded)
        self.step_back_button.setEnabled(loaded and seekable)
        self._seekable = loaded and seekable
        self._at_end = False
        self._update_step()

    def show_source(self, source: str, kind: str) -> None:
        """Show the source in use where it could have been chosen: the camera index or the URL field."""
        if kind == "camera":
            self.camera_index.setValue(int(source))
        elif kind == "stream":
            self.url.setText(source)

    def set_at_end(self, at_end: bool) -> None:
        """The last frame of the file is on screen: nothing to step forward to."""
        self._at_end = at_end
        self._update_step()

    def set_paused(self, paused: bool) -> None:
        """Reflect the pause state without emitting `pause_toggled` again."""
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Play" if paused else "Pause")
        self.pause_button.blockSignals(False)
        self._update_step()

    def _update_step(self) -> None:
        self.step_button.setEnabled(self._seekable and self.pause_button.isChecked() and not self._at_end)

    def set_recording(self, recording: bool) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(recording)
        self.record_button.setText("Stop recording" if recording else "Record")
        self.record_button.blockSignals(False)

    def show_model_progress(self, percent: int, step: str) -> None:
        self.model_progress.show()
        self.model_progress.setValue(percent)
        self.model_status.setText(step)
        self.load_model_button.setEnabled(False)

    def model_done(self, message: str) -> None:
        self.model_progress.hide()
        self.model_status.setText(message)
        self.load_model_button.setEnabled(True)

    # ---- slots ----------------------------------------------------------------------

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video or an image", "", VIDEO_FILTER)
        if path:
            self.source_requested.emit(path)

    def _open_url(self) -> None:
        url = self.url.text().strip()
        if url:
            self.source_requested.emit(url)

    def _pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("Play" if paused else "Pause")
        self._update_step()
        self.pause_toggled.emit(paused)

    def _tracker_option_changed(self, *_: Any) -> None:
        self._update_score_hint()
        self.settings_changed.emit({"tracker_options": self.tracker_options()})

    def _update_score_hint(self, *_: Any) -> None:
        min_score = self.tracker_options().get("min_score")
        if min_score is None:
            min_score = self._tracker_default_min_score
        low = min_score is not None and self.detection_threshold.value() < float(min_score)
        self.score_hint.setText(f"People scoring under the tracker's Min score ({float(min_score or 0):.2f}, "
                                "Tracker tab) start no track, so they are not shown." if low else "")
        self.score_hint.setVisible(low)

    def _request_model(self) -> None:
        detector = self.detector.currentText()
        det_file = detector.removeprefix("file: ") if detector.startswith("file: ") else ""
        network = "" if det_file or detector.startswith("ground truth: ") else detector
        self.model_requested.emit(ModelRequest(
            pose_config=self.model_config.text().strip(), pose_weights=self.model_weights.currentText().strip(),
            backend=self.model_backend.currentText(), detector=network, det_file=det_file,
            det_weights=self.detector_weights.text().strip() if network else ""))

    def show_models(self, *, weights: str, config: str, backend: str, detector: str, detector_weights: str) -> None:
        """Show the models that run (after a load, or instead of a choice that failed to load)."""
        self.model_weights.setCurrentText(weights)
        self.model_config.setText(config)
        if backend:
            self.model_backend.setCurrentText(backend)
        if self.detector.findText(detector) < 0:
            self.detector.addItem(detector)
        self.detector.setCurrentText(detector)
        self.detector_weights.setText(detector_weights)

    def _choose_detector_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Detector weights", "", "Weights (*.pth *.pt);;All files (*)")
        if path:
            self.detector_weights.setText(path)

    def _choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "HRNet experiment config", "", "YAML (*.yaml *.yml)")
        if path:
            self.model_config.setText(path)

    def _choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "HRNet weights", "", "Weights (*.pth *.pt *.pth.tar);;All files (*)")
        if path:
            self.model_weights.setCurrentText(path)

    def _choose_detections(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Person detections (COCO results)", "", "JSON (*.json)")
        if path:
            choice = f"file: {path}"
            if self.detector.findText(choice) < 0:
                self.detector.addItem(choice)
            self.detector.setCurrentText(choice)
