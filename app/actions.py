"""The window's commands as data: menu, text, keys. One table feeds the menu bar, the shortcuts and the F1 list.

Every command is a `QAction` with application-wide shortcuts (they work
whichever control has the focus); `may_run` keeps plain keys for a text
field being typed in and silences everything under a modal dialog (`app.focus`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QApplication, QMenu, QMenuBar, QWidget

from app.focus import is_typing

MENUS = ("File", "Playback", "Output", "View", "Help")


@dataclass(frozen=True)
class Command:
    """One entry of the menu bar.

    Attributes:
        name: key in `MainWindow.actions_by_name`.
        menu: one of `MENUS`.
        text: the menu text ("&" marks the mnemonic).
        keys: shortcuts, e.g. ("O", "Ctrl+O"); the first is shown in the menu.
        checkable: a switch (its state is the action's `isChecked()`).
        separator_before: a line above it in the menu.
    """

    name: str
    menu: str
    text: str
    keys: tuple[str, ...] = ()
    checkable: bool = False
    separator_before: bool = False


COMMANDS: tuple[Command, ...] = (
    Command("open", "File", "&Open video or image…", ("O", "Ctrl+O")),
    Command("open_folder", "File", "Open &folder of frames…", ("Ctrl+Shift+O",)),
    Command("open_url", "File", "Open &URL…", ("Ctrl+L",)),
    Command("open_camera", "File", "Open &camera", ("Ctrl+K",)),
    Command("output_dir", "File", "Output fol&der…", (), separator_before=True),
    Command("quit", "File", "&Quit", ("Q", "Ctrl+Q"), separator_before=True),
    Command("pause", "Playback", "&Pause / play", ("Space",)),
    Command("step", "Playback", "Step &forward", ("Right",)),
    Command("step_back", "Playback", "Step &back", ("Left",)),
    Command("restart", "Playback", "Back to the &start", ("Home",)),
    Command("slower", "Playback", "S&lower", ("[",), separator_before=True),
    Command("faster", "Playback", "F&aster", ("]",)),
    Command("loop", "Playback", "&Loop", ("L",), checkable=True),
    Command("record", "Output", "&Record", ("R",), checkable=True),
    Command("snapshot", "Output", "&Snapshot", ("S",)),
    Command("export", "Output", "&Export poses shown", ("E",)),
    Command("export_video", "Output", "Export poses of the &whole video…", ("Shift+E",)),
    Command("boxes", "View", "&Boxes", ("B",), checkable=True),
    Command("trails", "View", "&Trails", ("T",), checkable=True),
    Command("labels", "View", "ID &labels", ("I",), checkable=True),
    Command("skeletons", "View", "S&keletons", ("K",), checkable=True),
    Command("panel", "View", "Control &panel", ("P",), checkable=True, separator_before=True),
    Command("tracks", "View", "Track &list", ("Ctrl+T",)),
    Command("full_screen", "View", "&Full screen", ("F11",), checkable=True),
    Command("focus_video", "View", "Back to the &video", ("Escape",)),
    Command("shortcuts", "Help", "&Keyboard shortcuts", ("F1", "?")),
    Command("about", "Help", "&About hrtrack", ()),
)


def _plain(key: str) -> bool:
    """A key a text field types (a character, Space, an arrow, Home), not Escape or a function key."""
    sequence = QKeySequence(key)
    if sequence.isEmpty():
        return False
    combination = sequence[0]
    named = combination.key()
    if combination.keyboardModifiers() & ~Qt.KeyboardModifier.ShiftModifier & ~Qt.KeyboardModifier.KeypadModifier:
        return False
    return named not in (Qt.Key.Key_Escape,) and not Qt.Key.Key_F1.value <= named.value <= Qt.Key.Key_F35.value


def may_run(has_plain_key: bool) -> bool:
    """False under a modal dialog, and for a plain key while a text field is being typed in.

    Text fields take plain keys themselves (Qt's shortcut override); this
    covers what reaches the shortcut anyway (a spin box's Space, say). A
    command with a plain and a modified key ("O", "Ctrl+O") still runs on
    the modified one.
    """
    if QApplication.activeModalWidget() is not None:
        return False
    modified = QApplication.keyboardModifiers() & (
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier)
    return not (has_plain_key and not modified and is_typing(QApplication.focusWidget()))


def _runner(action: QAction, slot: Callable[..., Any], has_plain_key: bool) -> Callable[[bool], None]:
    def run(checked: bool = False) -> None:
        if not may_run(has_plain_key):
            if action.isCheckable():
                # Qt flipped it already: put it back, silently.
                action.blockSignals(True)
                action.setChecked(not checked)
                action.blockSignals(False)
            return
        if action.isCheckable():
            slot(checked)
        else:
            slot()

    return run


def build_actions(window: QWidget, menu_bar: QMenuBar,
                  slots: dict[str, Callable[..., Any]]) -> tuple[dict[str, QAction], dict[str, QMenu]]:
    """One `QAction` per `COMMANDS` entry, in the menu bar and on `window`; `slots[name]` runs it.

    Returns the actions by name and the menus by name.

    Slots run on the person's action only (`triggered`: a key or a menu
    click); a checkable command's slot gets the new state. The window keeps a
    switch in step with its other controls by `setChecked`, which runs nothing.
    """
    menus: dict[str, QMenu] = {name: menu_bar.addMenu("&" + name) for name in MENUS}
    actions: dict[str, QAction] = {}
    for command in COMMANDS:
        action = QAction(command.text, window)
        action.setShortcuts([QKeySequence(key) for key in command.keys])
        action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.setCheckable(command.checkable)
        action.triggered.connect(_runner(action, slots[command.name], any(_plain(key) for key in command.keys)))
        if command.separator_before:
            menus[command.menu].addSeparator()
        menus[command.menu].addAction(action)
        window.addAction(action)
        actions[command.name] = action
    return actions, menus


def shortcut_list_html(actions: dict[str, QAction]) -> str:
    """The F1 list: every command with its keys, by menu."""
    rows = []
    for menu in MENUS:
        rows.append(f"<tr><td colspan=2><b>{menu}</b></td></tr>")
        for command in COMMANDS:
            if command.menu == menu and command.keys:
                keys = ", ".join(QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)
                                 for key in command.keys)
                rows.append(f"<tr><td>{html.escape(command.text.replace('&', ''))}</td>"
                            f"<td>&nbsp;&nbsp;{html.escape(keys)}</td></tr>")
    return "<table>" + "".join(rows) + "</table><p>Keys without Ctrl type text while a text field has the focus; " \
        "Escape gives the focus back to the video.</p>"
