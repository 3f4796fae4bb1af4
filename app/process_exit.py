"""How the process ends when its window goes away: signals and a window the window manager destroyed.

Every way out goes through the window's own close (`MainWindow.closeEvent`):
the window hides, the workers stop after the model call in flight, a
recording in progress is finished and renamed, and the event loop ends once
every thread has. So:

- SIGINT (Ctrl-C), SIGTERM (`kill <pid>`, a service manager) and SIGHUP (the
  terminal closed, the session logged out) close the window like its close
  button (`CloseOnSignals`). A second signal while that wait goes on exits at
  once with 128 + the signal number, as a shell reports it; an ordinary exit
  would finalise the interpreter under the running model call, which aborts
  the process. A recording in progress then stays as its `.part` file.
- A window destroyed under the application (X11 `DestroyNotify`, as
  `xdotool windowclose` or a desktop logging out does) never gets a close
  event: Qt keeps running invisibly. `DestroyedWindowWatch` sees the X event
  and closes the window the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import struct
from typing import Any, Callable

from PyQt6.QtCore import QAbstractNativeEventFilter, QByteArray, QTimer
from PyQt6.QtWidgets import QWidget

logger = logging.getLogger(__name__)

CLOSING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How often Python gets the main thread back from Qt's event loop to run its signal handlers.
_SIGNAL_POLL_MS = 200
# xcb_destroy_notify_event_t: response_type u8, pad u8, sequence u16, event u32, window u32.
_XCB_DESTROY_NOTIFY = 17
_XCB_EVENT_SIZE = 32


def _signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class CloseOnSignals:
    """SIGINT, SIGTERM and SIGHUP while the window is open: the first closes it cleanly, a second exits at once.

    Use as a context manager around the event loop; it restores the previous
    handlers on the way out.
    """

    def __init__(self, close: Callable[[], Any], signals: tuple[int, ...] = CLOSING_SIGNALS) -> None:
        self._close = close
        self._signals = signals
        self._count = 0
        self._previous: dict[int, Any] = {}
        # Python runs a signal handler only when the interpreter gets control:
        # this timer hands it the main thread now and then while Qt's loop holds it.
        self._heartbeat = QTimer()
        self._heartbeat.timeout.connect(lambda: None)

    def __enter__(self) -> "CloseOnSignals":
        for signum in self._signals:
            self._previous[signum] = signal.signal(signum, self)
        self._heartbeat.start(_SIGNAL_POLL_MS)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._heartbeat.stop()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def __call__(self, signum: int, frame: Any) -> None:
        self._count += 1
        name = _signal_name(signum)
        if self._count == 1:
            logger.warning("%s: closing the window, finishing any recording (%s again exits at once)", name, name)
            self._close()
            return
        logger.error("second %s: exiting now, without waiting for the model call in progress", name)
        logging.shutdown()
        os._exit(128 + int(signum))


def destroyed_window_id(event_type: bytes, event: bytes) -> int | None:
    """The X11 window id an xcb `DestroyNotify` event reports, else None.

    Args:
        event_type: the native event type Qt names (b"xcb_generic_event_t" on X11).
        event: the first 32 bytes of the event (xcb events are 32 bytes).
    """
    if event_type != b"xcb_generic_event_t" or len(event) < _XCB_EVENT_SIZE:
        return None
    # The top bit marks events sent by another client (SendEvent): a destroy all the same.
    if event[0] & 0x7F != _XCB_DESTROY_NOTIFY:
        return None
    (window,) = struct.unpack_from("=I", event, 8)
    return int(window)


class DestroyedWindowWatch(QAbstractNativeEventFilter):
    """Closes `window` (its own close path) when X11 says its native window was destroyed.

    Install with `QApplication.installNativeEventFilter`; on other platforms
    it never matches. The event is passed on to Qt unchanged.
    """

    def __init__(self, window: QWidget) -> None:
        super().__init__()
        self._window = window
        self.fired = False

    def nativeEventFilter(self, event_type: QByteArray, message: Any) -> tuple[bool, int]:  # noqa: N802 (Qt naming)
        kind = bytes(event_type)
        if kind == b"xcb_generic_event_t" and not self.fired:
            message.setsize(_XCB_EVENT_SIZE)
            window_id = destroyed_window_id(kind, bytes(message.asstring(_XCB_EVENT_SIZE)))
            if window_id is not None and window_id == int(self._window.winId()):
                self.fired = True
                logger.warning("the window was destroyed by the window system: closing")
                # Not inside Qt's native event dispatch: close from the event loop.
                QTimer.singleShot(0, self._window.close)
        return False, 0
