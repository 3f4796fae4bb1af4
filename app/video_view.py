"""The widget that shows the annotated video, scaled to fit with its aspect ratio kept."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, QSize, Qt
from PyQt6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget


def image_from_bgr(array: np.ndarray) -> QImage:
    """Wrap an (H, W, 3) uint8 BGR array in a QImage without copying the pixels.

    The QImage points into `array`'s buffer, so whoever keeps the image must
    keep the array alive too (see `VideoFrame`). Qt reads BGR directly with
    Format_BGR888, so no colour conversion either.
    """
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR array, got {array.shape} {array.dtype}")
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    return QImage(array.data, width, height, array.strides[0], QImage.Format.Format_BGR888)


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
    trip), so the pixels are read once from the worker's buffer.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        # The numpy buffer the QImage points into; held so it outlives the image.
        self._buffer: np.ndarray | None = None
        self._message = "No video"
        self.frames_painted = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 90)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt naming)
        return QSize(960, 540)

    def set_frame(self, image: QImage, buffer: np.ndarray | None = None) -> None:
        """Show `image`; `buffer` is the array it wraps (kept alive while shown)."""
        self._image = image
        self._buffer = buffer
        self.update()

    def set_message(self, message: str) -> None:
        """Text shown over the view while there is no frame (and kept when one arrives)."""
        self._message = message
        self.update()

    def clear(self, message: str = "No video") -> None:
        self._image = None
        self._buffer = None
        self.set_message(message)

    @property
    def image(self) -> QImage | None:
        return self._image

    def video_rect(self) -> QRect:
        """Where the frame is drawn, in widget coordinates (empty without a frame)."""
        if self._image is None:
            return QRect()
        return fit_rect(self._image.size(), self.rect())

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
