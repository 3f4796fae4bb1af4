"""Runs `main.py gui` offscreen and closes the window while a model call is in flight (for tests/test_gui.py).

    python tests/gui_close_app.py HOW SOURCE -- GUI_ARGS...

HOW is how the window is closed:
  q        the Q shortcut, while the pose model is inside a 3 s call;
  button   the window's close button (a close request to its QWindow), same moment;
  paused   pause, then the close button, same moment;
  sigint   Ctrl-C (SIGINT) in the terminal, same moment as q;
  sigint2  Ctrl-C twice: the second exits at once (status 130) without waiting for the call.
  sigterm, sighup
           `kill <pid>` / the terminal closing, with a recording running: start recording once the
           first frame is shown, then send the signal while a later pose call is held;
  sigterm2 SIGTERM twice: the second exits at once (status 143).
  destroy  the native window destroyed under Qt (the X11 DestroyNotify that `xdotool windowclose`
           causes), delivered to the application's native event filters, same moment as q.

The pose estimator is the real one from the options, with every pose batch
held for `BLOCK_S` seconds, as a big HRNet on a CPU takes. The script prints
`closed hidden=<bool> at T` when it closed the window, `call finished at T` when
a held call returned and `exiting at T` (T: time.monotonic()), and exits with
the status of `main.main`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BLOCK_S = 3.0


class BlockingEstimator:
    """The real estimator, with each `estimate_many` call held for `BLOCK_S` seconds."""

    def __init__(self, estimator, entered: threading.Event) -> None:
        self._estimator = estimator
        self._entered = entered

    def __getattr__(self, name):
        return getattr(self._estimator, name)

    def __call__(self, image, boxes):  # the loader's warm-up: not held
        return self._estimator(image, boxes)

    def estimate_many(self, images, boxes_per_image):
        self._entered.set()
        time.sleep(BLOCK_S)
        results = self._estimator.estimate_many(images, boxes_per_image)
        print(f"call finished at {time.monotonic():.3f}", flush=True)
        return results


def main() -> int:
    how, source = sys.argv[1], sys.argv[2]
    gui_args = sys.argv[sys.argv.index("--") + 1:]

    from PyQt6 import sip
    from PyQt6.QtCore import QAbstractEventDispatcher, QByteArray, Qt, QTimer
    from PyQt6.QtGui import QCloseEvent
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    import app.model_loader as model_loader
    import main as cli
    from app.main_window import MainWindow

    entered = threading.Event()
    real_build = model_loader.build_estimator  # replaced where the window's loader looks it up
    model_loader.build_estimator = lambda *args: BlockingEstimator(real_build(*args), entered)

    app = QApplication(sys.argv[:1])

    def window() -> MainWindow | None:
        return next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow)), None)

    recording_from: list[int] = []

    def close_when_ready() -> None:
        target = window()
        if target is None:
            return
        if how in ("sigterm", "sighup"):
            if not recording_from:
                if target.frames_shown < 1:
                    return
                target.set_recording(True)
                recording_from.append(target.frames_shown)
                entered.clear()
            # A frame was recorded, and the next pose call is held.
            ready = target.frames_shown > recording_from[0] and entered.is_set()
        else:
            ready = entered.is_set()
        if not ready:
            return
        poll.stop()
        if how == "q":
            QTest.keyClick(target, Qt.Key.Key_Q)
        elif how == "destroy":
            destroy = bytearray(32)
            destroy[0] = 17  # XCB_DESTROY_NOTIFY
            destroy[4:8] = destroy[8:12] = int(target.winId()).to_bytes(4, sys.byteorder)
            event = bytes(destroy)  # alive while the pointer to it is read
            # As the xcb plugin hands it over: to every native event filter of the application.
            QAbstractEventDispatcher.instance().filterNativeEvent(QByteArray(b"xcb_generic_event_t"),
                                                                  sip.voidptr(event))
        elif how.startswith(("sigint", "sigterm", "sighup")):
            signum = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}[how.rstrip("2")]
            os.kill(os.getpid(), signum)
            if how.endswith("2"):
                # The second comes once the first was handled (the window is hidden then).
                QTimer.singleShot(300, lambda: os.kill(os.getpid(), signum))
        else:
            if how == "paused":
                target.set_paused(True)
            QApplication.sendEvent(target.windowHandle(), QCloseEvent())
        QTimer.singleShot(100, lambda: print(f"closed hidden={not target.isVisible()} at {time.monotonic():.3f}",
                                             flush=True))

    poll = QTimer()
    poll.timeout.connect(close_when_ready)
    poll.start(20)
    status = cli.main(["gui", "--source", source, *gui_args])
    print(f"exiting at {time.monotonic():.3f}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
