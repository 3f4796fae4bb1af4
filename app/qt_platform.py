"""Can the Qt window start here? A check that fails with a message instead of aborting the process.

When Qt cannot load its platform plugin (on Linux usually `xcb`, which needs a
few X11 libraries that a fresh machine lacks, or a `DISPLAY`), it prints a
line or two and aborts the process (SIGABRT, a core dump). So before the
window is made, `platform_problem()` starts Qt once in a child process: if
that child fails, the window is not attempted and the person gets Qt's own
words plus the system packages to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The Debian/Ubuntu packages the xcb plugin of the PyQt6 wheels needs beyond a
# base system (`ldd` on PyQt6/Qt6/plugins/platforms/libqxcb.so). libxcb-cursor0
# is new since Qt 6.5; most desktops have the rest.
XCB_PACKAGES = (
    "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-randr0",
    "libxcb-render-util0", "libxcb-shape0", "libxcb-xfixes0", "libxcb-xkb1", "libxkbcommon-x11-0",
    "libx11-xcb1", "libegl1", "libgl1", "libfontconfig1", "libdbus-1-3",
)
# Platforms that draw into memory and need no system libraries or display.
_HEADLESS_PLATFORMS = ("offscreen", "minimal")
_PROBE = (
    "import resource, sys\n"
    # The child is expected to abort when the plugin fails: no core file for that.
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "from PyQt6.QtWidgets import QApplication\n"
    "QApplication(sys.argv[:1])\n"
)
_PROBE_TIMEOUT_S = 60.0


def _platform_name(environ: os._Environ | dict) -> str:
    return (environ.get("QT_QPA_PLATFORM") or "").split(":")[0].strip().lower()


def missing_libraries(plugin: Path) -> list[str]:
    """Shared libraries `plugin` (and the Qt libraries it loads) need but the system lacks, from `ldd`."""
    ldd = shutil.which("ldd")
    if ldd is None or not plugin.is_file():
        return []
    try:
        output = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(re.findall(r"^\s*(\S+) => not found", output, flags=re.MULTILINE)))


def xcb_plugin_path() -> Path:
    import PyQt6  # noqa: PLC0415 - only to find the wheel's files; loads no Qt library

    return Path(PyQt6.__file__).parent / "Qt6" / "plugins" / "platforms" / "libqxcb.so"


def platform_problem(environ: os._Environ | dict | None = None) -> str | None:
    """A message saying why the Qt window cannot start here, or None when it can.

    Only on Linux with a platform that needs a display (headless platforms
    such as `offscreen` always start); costs one short child process.
    """
    environ = os.environ if environ is None else environ
    platform = _platform_name(environ)
    if not sys.platform.startswith("linux") or platform in _HEADLESS_PLATFORMS:
        return None
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                               timeout=_PROBE_TIMEOUT_S, env=dict(environ))
    except subprocess.TimeoutExpired:
        return None  # slow, not failing: let the window try
    if probe.returncode == 0:
        return None
    qt_said = [line.strip() for line in probe.stderr.splitlines() if line.strip() and "Traceback" not in line]
    missing = missing_libraries(xcb_plugin_path()) if platform in ("", "xcb") else []
    lines = [f"The Qt window cannot start: Qt could not load its platform plugin ({platform or 'default'})."]
    if qt_said:
        lines.append("Qt said: " + " ".join(qt_said[-4:]))
    if missing:
        lines.append("Missing system libraries: " + ", ".join(missing) + ".")
    if platform in ("", "xcb"):
        lines.append("On Debian/Ubuntu install the libraries of Qt's xcb plugin:")
        lines.append("    sudo apt-get install " + " ".join(XCB_PACKAGES))
        if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
            lines.append("No DISPLAY is set: run it in a desktop session (or with ssh -X).")
    lines.append("Without a display, QT_QPA_PLATFORM=offscreen renders the window for --screenshot only; "
                 "`main.py track` needs no window.")
    return "\n".join(lines)
