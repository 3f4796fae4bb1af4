"""The timeline under the video: position in the file, click or drag to seek, loop, playback speed.

Frame numbers are shown 1-based ("frame 5 / 5" on the last frame of a
5-frame clip) next to the time; the signals carry 0-based frame indices, as
the pipeline counts them.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProxyStyle,
    QSlider,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from app.playback import SPEEDS, speed_label


def format_time(seconds: float) -> str:
    """"m:ss.s" (or "h:mm:ss.s" from an hour on)."""
    tenths = int(round(max(0.0, seconds) * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    text = f"{minutes:02d}:{rest / 10:04.1f}" if hours else f"{minutes}:{rest / 10:04.1f}"
    return f"{hours}:{text}" if hours else text


def position_text(index: int | None, frame_count: int | None, fps: float) -> str:
    """What the label says with 0-based frame `index` on screen (None: nothing yet)."""
    if index is None:
        return "frame –"
    frame = f"frame {index + 1}" + (f" / {frame_count}" if frame_count else "")
    if fps > 0:
        time = format_time(index / fps) + (f" / {format_time(frame_count / fps)}" if frame_count else "")
        return f"{time} · {frame}"
    return frame


class _ClickJumpStyle(QProxyStyle):
    """A left click on the groove puts the handle there (and starts a drag), instead of moving one page."""

    def styleHint(self, hint, option=None, widget=None, returnData=None):  # noqa: N802 (Qt naming)
        if hint == QStyle.StyleHint.SH_Slider_AbsoluteSetButtons:
            return Qt.MouseButton.LeftButton.value
        return super().styleHint(hint, option, widget, returnData)


class Timeline(QWidget):
    """Slider (the width of the video), and under it the position, Loop and Speed.

    Signals:
        seek_requested(int): show this 0-based frame (a click, a released drag, a key on the slider).
        speed_changed(object): the playback speed chosen (float, or None for as fast as possible).
    """

    seek_requested = pyqtSignal(int)
    speed_changed = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._frame_count: int | None = None
        self._fps = 0.0
        self._index: int | None = None
        self.slider = QSlider(Qt.Orientation.Horizontal)
        # Its own base style (a proxy owns its base: never the application's), deleted with the slider.
        style = _ClickJumpStyle()
        style.setParent(self.slider)
        self.slider.setStyle(style)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Position in the file: click or drag to go there (tracking restarts there: IDs restart)")
        self.slider.sliderReleased.connect(lambda: self.seek_requested.emit(self.slider.value()))
        self.slider.sliderMoved.connect(self._show_preview)
        self.slider.actionTriggered.connect(self._slider_action)
        self.label = QLabel(position_text(None, None, 0.0))
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance("00:00.0 / 00:00.0 · frame 00000 / 00000"))
        self.loop = QCheckBox("Loop")
        self.loop.setToolTip("Start the file again from its first frame when it ends")
        self.speed = QComboBox()
        for speed in SPEEDS:
            self.speed.addItem(speed_label(speed), speed)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.setToolTip("Playback speed of a file: its frame rate times this; frames the models cannot "
                              "keep up with are skipped. \"As fast as possible\" processes every frame.")
        self.speed.currentIndexChanged.connect(lambda index: self.speed_changed.emit(self.speed.itemData(index)))
        # The slider gets the whole width of the video; the rest goes on the line below.
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.slider)
        row = QHBoxLayout()
        row.addWidget(self.label)
        row.addStretch(1)
        row.addWidget(self.loop)
        row.addWidget(QLabel("Speed"))
        row.addWidget(self.speed)
        column.addLayout(row)
        self.set_source(loaded=False, seekable=False)

    @property
    def playback_speed(self) -> float | None:
        return self.speed.currentData()

    def set_speed(self, speed: float | None) -> None:
        """Choose `speed` (one of `SPEEDS`) as if picked in the list."""
        if speed not in SPEEDS:
            raise ValueError(f"playback speed must be one of {SPEEDS}, got {speed}")
        self.speed.setCurrentIndex(SPEEDS.index(speed))

    def set_source(self, *, loaded: bool, seekable: bool, frame_count: int | None = None, fps: float = 0.0) -> None:
        """A new source: the slider applies to files with a known length; speed and loop to files."""
        self._frame_count, self._fps, self._index = frame_count, fps, None
        self.slider.setEnabled(loaded and seekable and bool(frame_count))
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, (frame_count or 1) - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.label.setText(position_text(None, None, 0.0) if not loaded else "live" if not seekable else
                           position_text(0, frame_count, fps))

    def set_position(self, index: int) -> None:
        """Frame `index` (0-based) is on screen; the slider follows unless it is being dragged."""
        self._index = index
        if not self.slider.isSliderDown():
            self.label.setText(position_text(index, self._frame_count, self._fps) if self.slider.isEnabled()
                               or self._frame_count else f"frame {index + 1}")
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)

    def _show_preview(self, value: int) -> None:
        # While dragging, the label says where the release will go.
        self.label.setText(position_text(value, self._frame_count, self._fps))

    def _slider_action(self, action: int) -> None:
        # Keyboard steps on the slider seek at once; a click or drag seeks when let go.
        if action != QSlider.SliderAction.SliderMove.value and not self.slider.isSliderDown():
            self.seek_requested.emit(self.slider.sliderPosition())
