"""Keyboard focus and the mouse wheel in the window: shortcuts that keep working, values that do not change by accident.

The window's shortcuts are plain keys (Space, arrows, R, S, E, O, Q) that
work whichever control last had the focus. Only typing in a text field keeps
them: `is_typing` says when the focus is in one. After a choice in a combo
box, Return in a field, or Escape anywhere, the focus goes back to the video
(`FocusReturn`), so the next key is a shortcut again.

Spin boxes and combo boxes take the mouse wheel only when they have the
focus (`WheelOnlyWhenFocused`); otherwise the wheel scrolls the panel, so
scrolling past the detection threshold never changes it.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QWidget

_FIELD_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape)


def is_typing(widget: QWidget | None) -> bool:
    """True when `widget` (the focus) takes text: an editable line, spin box or editable combo box."""
    if isinstance(widget, QLineEdit):
        return not widget.isReadOnly()
    if isinstance(widget, QAbstractSpinBox):
        return not widget.isReadOnly()
    return isinstance(widget, QComboBox) and widget.isEditable()


class WheelOnlyWhenFocused(QObject):
    """An event filter: a spin box or combo box without the focus passes the wheel on to its parent (the panel)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            # Not accepted, so Qt offers it to the parents: the scroll area scrolls.
            event.ignore()
            return True
        return False

    def guard(self, root: QWidget) -> None:
        """Apply to every spin box and combo box under `root`; the wheel no longer gives them the focus."""
        for widget in root.findChildren((QAbstractSpinBox, QComboBox)):
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            widget.installEventFilter(self)


class FocusReturn(QObject):
    """Hands the focus to `target` (the video) once a field or a combo box under `root` is done with it.

    Done means: Return, Enter or Escape in a field (after the field took it,
    so a typed value is committed first), or an item chosen in a combo box.
    Escape elsewhere is the window's shortcut for `give_back`.
    """

    def __init__(self, root: QWidget, target: QWidget) -> None:
        super().__init__(root)
        self._target = target
        for widget in root.findChildren((QAbstractSpinBox, QLineEdit)):
            widget.installEventFilter(self)
        for combo in root.findChildren(QComboBox):
            # (An editable combo also emits it on Return in its line: done too.)
            combo.activated.connect(self._give_back_later)

    def give_back(self) -> None:
        self._target.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _give_back_later(self, *_: object) -> None:
        # After the widget has finished with the key or the choice.
        QTimer.singleShot(0, self.give_back)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) and event.key() in _FIELD_KEYS:
            self._give_back_later()
        return False
