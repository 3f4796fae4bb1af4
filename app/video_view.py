"""The widgets that show things: the annotated video (scaled to fit, aspect ratio kept) and message labels."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent
from PyQt6.QtWidgets import QLabel, QSizePolicy, QWidget


def image_from_bgr(array: np.ndarray) -> QImage:
    """An (H, W, 3) uint8 BGR array as a QImage that owns a copy of the pixels.

    A QImage built on `array.data` only borrows the memory: it would point at
    freed pixels once the array (or the contiguous temporary made from a
    strided view) is gone, and it shows later writes to the array. The copy
    (about 1 ms for 1280x720) makes the image safe to hand to another thread
    and keep as long as the window likes. Qt reads BGR directly with
    Format_BGR888, so no colour conversion.
    """
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR array, got {array.shape} {array.dtype}")
    pixels = np.ascontiguousarray(array)
    height, width = pixels.shape[:2]
    # `pixels` lives until copy() has returned.
    return QImage(pixels.data, width, height, pixels.strides[0], QImage.Format.Format_BGR888).copy()


def fit_rect(image_size: QSize, area: QRect) -> QRect:
    """The largest rectangle of the image's aspect ratio centred in `area`."""
    if image_size.isEmpty() or area.isEmpty():
        return QRect(area.topLeft(), QSize(0, 0))
    scaled = image_size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    left = area.left() + (area.width() - scaled.width()) // 2
    top = area.top() + (area.height() - scaled.height()) // 2
    return QRect(left, top, scaled.width(), scaled.height())


class VideoView(QWidget):
    """Paints the latest frame letterboxed on black, or a message when there is none.

    Painting scales the QImage straight onto the widget (no QPixmap round
    trip).

    Signals:
        frame_clicked(float, float): a left click on the frame, in frame pixels (x, y).
    """

    frame_clicked = pyqtSignal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._message = "No video"
        self.frames_painted = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 90)
        # Takes the focus (click, Escape), so the window's keys are shortcuts again.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(960, 540)

    def set_frame(self, image: QImage) -> None:
        """Show `image` (one that owns its pixels, as `image_from_bgr` makes)."""
        self._image = image
        self.update()

    def set_message(self, message: str) -> None:
        """Text shown over the view while there is no frame (and kept when one arrives)."""
        self._message = message
        self.update()

    def clear(self, message: str = "No video") -> None:
        self._image = None
        self.set_message(message)

    @property
    def image(self) -> QImage | None:
        return self._image

    def video_rect(self) -> QRect:
        """Where the frame is drawn, in widget coordinates (empty without a frame)."""
        if self._image is None:
            return QRect()
        return fit_rect(self._image.size(), self.rect())

    def frame_point(self, x: float, y: float) -> tuple[float, float] | None:
        """Widget point (x, y) in frame pixels; None outside the frame."""
        rect = self.video_rect()
        if rect.isEmpty() or not rect.contains(int(x), int(y)):
            return None
        return ((x - rect.left()) * self._image.width() / rect.width(),
                (y - rect.top()) * self._image.height() / rect.height())

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt naming)
        super().mousePressEvent(event)
        if event.button() == Qt.MouseButton.LeftButton:
            point = self.frame_point(event.position().x(), event.position().y())
            if point is not None:
                self.frame_clicked.emit(*point)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor(0, 0, 0))
            if self._image is not None:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(self.video_rect(), self._image)
                self.frames_painted += 1
            else:
                painter.setPen(QColor(220, 220, 220))
                painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        finally:
            painter.end()


def wrappable(text: str, max_run: int = 24) -> str:
    """`text` with invisible break opportunities, so a word-wrapped label never widens its panel.

    A QLabel wraps only between words, and a URL or a file path is one long
    word, as wide as the label then insists on being. A zero-width space after
    each path or URL separator (and inside any longer unbroken run) lets it wrap there.
    """
    pieces = []
    run = 0
    for char in text:
        pieces.append(char)
        run = 0 if char.isspace() else run + 1
        if char in "/\\_-.?&=:,;" or run >= max_run:
            pieces.append("\u200b")
            run = 0
    return "".join(pieces)


class MessageLabel(QLabel):
    """A word-wrapped label for messages of any length: it wraps anywhere and never asks for more width."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        # The layout decides the width; the label only says how tall it gets at that width.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt naming)
        self._plain = text
        super().setText(wrappable(text))

    def text(self) -> str:
        """The message as given (without the break opportunities)."""
        return self._plain


class ElidedLabel(QLabel):
    """A one-line label that shows as much of its text as fits, ending in "…", and never asks for more width.

    `text()` is the whole text; the tooltip shows it too.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt naming)
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(0, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(0, super().sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        try:
            area = self.contentsRect()
            shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, area.width())
            painter.drawText(area, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), shown)
        finally:
            painter.end()
