"""What the window remembers between runs (QSettings): geometry, recent sources, output folder, playback and drawing choices.

Stored in Qt's per-user place (on Linux `~/.config/hrtrack/gui.conf`).
Options given on the command line win over remembered ones; `cli/gui.py`
decides which. Unreadable or stale values fall back to the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QByteArray, QCoreApplication, QSettings

RECENT_LIMIT = 10


class Preferences:
    """Typed access to the window's QSettings.

    Args:
        path: an INI file to use instead of the per-user settings (tests, or a
            portable setup); None: the standard place.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        if path is None:
            self._settings = QSettings("hrtrack", "gui")
        else:
            self._settings = QSettings(str(path), QSettings.Format.IniFormat)
        # Owned by the application object, so it is destroyed (and written) before the
        # application, whatever order Python's exit collects its wrappers in.
        self._settings.setParent(QCoreApplication.instance())

    def sync(self) -> None:
        self._settings.sync()

    # ---- window ---------------------------------------------------------------------

    def geometry(self) -> QByteArray | None:
        value = self._settings.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, geometry: QByteArray) -> None:
        self._settings.setValue("window/geometry", geometry)

    def panel_visible(self) -> bool:
        return self._bool("window/panel", True)

    def set_panel_visible(self, visible: bool) -> None:
        self._settings.setValue("window/panel", visible)

    # ---- sources and outputs ------------------------------------------------------

    def recent_sources(self) -> list[str]:
        """Most recent first; files and folders that no longer exist are left out."""
        value = self._settings.value("sources/recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [item for item in items if isinstance(item, str) and item
                and (item.isdigit() or "://" in item or Path(item).exists())]

    def add_recent_source(self, source: str) -> list[str]:
        recent = [source, *(item for item in self.recent_sources() if item != source)][:RECENT_LIMIT]
        self._settings.setValue("sources/recent", recent)
        return recent

    def clear_recent_sources(self) -> None:
        self._settings.setValue("sources/recent", [])

    def output_dir(self) -> str | None:
        value = self._settings.value("output/folder")
        return value if isinstance(value, str) and value else None

    def set_output_dir(self, folder: str) -> None:
        self._settings.setValue("output/folder", folder)

    # ---- playback and drawing -----------------------------------------------------

    def value(self, key: str, default: Any, kind: type) -> Any:
        """`key` as `kind` (bool, int, float, str), or `default` when missing or unreadable."""
        if kind is bool:
            return self._bool(key, default)
        raw = self._settings.value(key)
        if raw is None:
            return default
        try:
            return kind(raw)
        except (TypeError, ValueError):
            return default

    def set_value(self, key: str, value: Any) -> None:
        self._settings.setValue(key, value)

    def _bool(self, key: str, default: bool) -> bool:
        raw = self._settings.value(key)
        if raw is None:
            return default
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in ("1", "true", "yes", "on")
