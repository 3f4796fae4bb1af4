"""The control panel: source, playback, live thresholds, tracker options, model, outputs.

It only emits signals; the main window decides what they do. Tracker options
are a chosen few of `tracker.TrackerOptions`, with the tracker's own defaults.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.settings import ViewSettings

LOG = logging.getLogger(__name__)

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v);;All files (*)"


@dataclass(frozen=True)
class TrackerOption:
    """One option of the tracker that the panel can edit.

    Attributes:
        name: the `tracker.TrackerOptions` field.
        default: its default (bool, int, float or str).
        choices: the allowed values of a text option (None for numbers and switches).
    """

    name: str
    default: Any
    choices: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


# The tracker options worth changing while watching, in display order; text
# options list their values (the tracker rejects anything else with a message).
EDITABLE_TRACKER_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "similarity": ("oks", "iou", "mix"),
    "matching": ("greedy", "hungarian"),
    "similarity_threshold": None,
    "max_age": None,
    "min_hits": None,
    "min_score": None,
    "motion": ("constant_velocity", "none"),
    "flow": None,
    "smoothing": ("none", "one_euro"),
}


def tracker_options_of(options_class: Any) -> list[TrackerOption]:
    """The editable options of a dataclass of tracker options, with its defaults.

    Options the class does not have are left out, so an older or newer
    tracker still gets a panel with whatever applies.
    """
    if options_class is None or not dataclasses.is_dataclass(options_class):
        return []
    defaults = {}
    for item in dataclasses.fields(options_class):
        if item.default is not dataclasses.MISSING:
            defaults[item.name] = item.default
    options = []
    for name, choices in EDITABLE_TRACKER_OPTIONS.items():
        default = defaults.get(name)
        if isinstance(default, (bool, int, float)) or (isinstance(default, str) and choices and default in choices):
            options.append(TrackerOption(name, default, choices if isinstance(default, str) else None))
    return options


def default_tracker_options_class() -> Any:
    try:
        from tracker import TrackerOptions
    except ImportError as error:
        LOG.warning("tracker options unavailable: %s", error)
        return None
    return TrackerOptions


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
        settings_changed(dict): `ViewSettings` fields that changed.
        model_requested(str, str): load the pose model with this config ("" for
            the one matching the weights) and these weights (registry name or path).
        record_toggled(bool): start (True) or stop recording.
        snapshot_requested(), export_requested().
    """

    source_requested = pyqtSignal(str)
    pause_toggled = pyqtSignal(bool)
    step_requested = pyqtSignal()
    settings_changed = pyqtSignal(dict)
    model_requested = pyqtSignal(str, str)
    record_toggled = pyqtSignal(bool)
    snapshot_requested = pyqtSignal()
    export_requested = pyqtSignal()

    def __init__(self, settings: ViewSettings, model_choices: list[str], current_weights: str, current_config: str,
                 tracker_options: list[TrackerOption], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tracker_widgets: dict[str, QWidget] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(self._source_group())
        layout.addWidget(self._playback_group())
        layout.addWidget(self._output_group())
        # The less frequent settings share one area, so the panel fits a 720p window.
        self.tabs = QTabWidget()
        self.tabs.addTab(self._display_group(settings), "Display")
        if tracker_options:
            self.tabs.addTab(self._tracker_group(tracker_options, settings.tracker_options), "Tracker")
        self.tabs.addTab(self._model_group(model_choices, current_weights, current_config), "Model")
        layout.addWidget(self.tabs)
        layout.addStretch(1)
        self.setMaximumWidth(360)

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
        row = QHBoxLayout(group)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("One frame forward (files, while paused)")
        self.step_button.clicked.connect(self.step_requested)
        self.step_button.setEnabled(False)
        row.addWidget(self.pause_button)
        row.addWidget(self.step_button)
        return group

    def _display_group(self, settings: ViewSettings) -> QWidget:
        group = QWidget()
        form = QFormLayout(group)
        self.detection_threshold = _probability_box(settings.detection_threshold)
        self.detection_threshold.valueChanged.connect(
            lambda value: self.settings_changed.emit({"detection_threshold": value}))
        form.addRow("Detection threshold", self.detection_threshold)
        self.keypoint_threshold = _probability_box(settings.keypoint_threshold)
        self.keypoint_threshold.valueChanged.connect(
            lambda value: self.settings_changed.emit({"keypoint_threshold": value}))
        form.addRow("Keypoint threshold", self.keypoint_threshold)
        self.show_boxes = QCheckBox("Boxes")
        self.show_boxes.setChecked(settings.show_boxes)
        self.show_boxes.toggled.connect(lambda on: self.settings_changed.emit({"show_boxes": on}))
        self.show_trails = QCheckBox("Trails")
        self.show_trails.setChecked(settings.show_trails)
        self.show_trails.toggled.connect(lambda on: self.settings_changed.emit({"show_trails": on}))
        row = QHBoxLayout()
        row.addWidget(self.show_boxes)
        row.addWidget(self.show_trails)
        form.addRow("Show", row)
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
        note = QLabel("A change starts a new tracker: IDs restart.")
        note.setWordWrap(True)
        form.addRow(note)
        for option in options:
            value = current.get(option.name, option.default)
            if option.choices is not None:
                widget = QComboBox()
                widget.addItems(option.choices)
                widget.setCurrentText(str(value))
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
            self._tracker_widgets[option.name] = widget
            form.addRow(option.label, widget)
        return group

    def _model_group(self, choices: list[str], current_weights: str, current_config: str) -> QWidget:
        group = QWidget()
        layout = QVBoxLayout(group)
        self.model_weights = QComboBox()
        self.model_weights.setEditable(True)
        # Long checkpoint paths must not widen the panel.
        self.model_weights.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_weights.setMinimumContentsLength(20)
        self.model_weights.setToolTip("Weights: a registry name (see `main.py weights`) or a checkpoint path")
        for choice in dict.fromkeys([current_weights, *choices]):
            if choice:
                self.model_weights.addItem(choice)
        self.model_weights.setCurrentText(current_weights)
        layout.addWidget(self.model_weights)
        self.model_config = QLineEdit(current_config)
        self.model_config.setPlaceholderText("config (empty: the one that goes with the weights)")
        self.model_config.setToolTip("An official-schema HRNet experiment YAML or a config registry name")
        layout.addWidget(self.model_config)
        row = QHBoxLayout()
        browse = QPushButton("Config…")
        browse.clicked.connect(self._choose_config)
        weights = QPushButton("Weights…")
        weights.clicked.connect(self._choose_weights)
        self.load_model_button = QPushButton("Load")
        self.load_model_button.clicked.connect(self._request_model)
        row.addWidget(browse)
        row.addWidget(weights)
        row.addWidget(self.load_model_button)
        layout.addLayout(row)
        self.model_progress = QProgressBar()
        self.model_progress.setRange(0, 100)
        self.model_progress.setTextVisible(True)
        self.model_progress.hide()
        layout.addWidget(self.model_progress)
        self.model_status = QLabel("")
        self.model_status.setWordWrap(True)
        layout.addWidget(self.model_status)
        return group

    def _output_group(self) -> QGroupBox:
        group = QGroupBox("Output")
        row = QHBoxLayout(group)
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self.record_toggled)
        snapshot = QPushButton("Snapshot")
        snapshot.clicked.connect(self.snapshot_requested)
        export = QPushButton("Export JSON")
        export.clicked.connect(self.export_requested)
        row.addWidget(self.record_button)
        row.addWidget(snapshot)
        row.addWidget(export)
        return group

    # ---- state shown by the window --------------------------------------------------

    def tracker_options(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, widget in self._tracker_widgets.items():
            if isinstance(widget, QCheckBox):
                values[name] = widget.isChecked()
            elif isinstance(widget, QComboBox):
                values[name] = widget.currentText()
            else:
                values[name] = widget.value()
        return values

    def set_paused(self, paused: bool) -> None:
        """Reflect the pause state without emitting `pause_toggled` again."""
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Play" if paused else "Pause")
        self.pause_button.blockSignals(False)

    def set_step_enabled(self, enabled: bool) -> None:
        self.step_button.setEnabled(enabled)

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
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", "", VIDEO_FILTER)
        if path:
            self.source_requested.emit(path)

    def _open_url(self) -> None:
        url = self.url.text().strip()
        if url:
            self.source_requested.emit(url)

    def _pause_toggled(self, paused: bool) -> None:
        self.pause_button.setText("Play" if paused else "Pause")
        self.pause_toggled.emit(paused)

    def _tracker_option_changed(self, *_: Any) -> None:
        self.settings_changed.emit({"tracker_options": self.tracker_options()})

    def _request_model(self) -> None:
        self.model_requested.emit(self.model_config.text().strip(), self.model_weights.currentText().strip())

    def _choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "HRNet experiment config", "", "YAML (*.yaml *.yml)")
        if path:
            self.model_config.setText(path)

    def _choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "HRNet weights", "", "Weights (*.pth *.pt *.pth.tar);;All files (*)")
        if path:
            self.model_weights.setCurrentText(path)
