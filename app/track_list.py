"""The list of the tracks on screen: ID, box score, visible keypoints; picking a row highlights that person."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.video_view import MessageLabel
from core.types import TrackedPoses

_COLUMNS = ("ID", "Score", "Keypoints")


class TrackList(QWidget):
    """One row per tracked person of the frame on screen (untracked poses, ID -1, are left out).

    Signals:
        highlight_requested(object): the track ID picked (int), or None when the pick was cleared.
    """

    highlight_requested = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(MessageLabel("Pick a row, or click a person in the video, to highlight that track "
                                      "and its trail; click again to clear."))
        layout.addWidget(self.table, 1)
        self._highlighted: int | None = None

    @property
    def highlighted(self) -> int | None:
        return self._highlighted

    def show_tracks(self, poses: TrackedPoses, keypoint_threshold: float) -> None:
        """The tracks of the frame on screen, by ID; the highlighted one stays selected while it is there."""
        rows = sorted((int(track_id), float(score), int((scores >= keypoint_threshold).sum()), scores.size)
                      for track_id, score, scores in zip(poses.track_ids, poses.box_scores, poses.scores)
                      if track_id >= 0)
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for row, (track_id, score, visible, total) in enumerate(rows):
            for column, text in enumerate((f"#{track_id}", f"{score:.2f}", f"{visible} / {total}")):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, track_id)
                self.table.setItem(row, column, item)
            if track_id == self._highlighted:
                self.table.selectRow(row)
        if not any(track_id == self._highlighted for track_id, *_ in rows):
            self.table.clearSelection()
        self.table.blockSignals(False)

    def toggle(self, track_id: int | None) -> None:
        """Highlight `track_id`, or clear the highlight when it is the highlighted one (or None)."""
        self._highlighted = None if track_id is None or track_id == self._highlighted else int(track_id)
        self.table.blockSignals(True)
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == self._highlighted:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        self.highlight_requested.emit(self._highlighted)

    def _selection_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        picked = self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole) if rows else None
        if picked != self._highlighted:
            self._highlighted = picked
            self.highlight_requested.emit(picked)
