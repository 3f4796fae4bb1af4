"""Opening a source on the worker thread so that a stop request is never stuck behind it.

`pipeline.capture.open_source` waits up to 10 s for a stream's first frame
while its reader retries a dead URL. A window closed (or given another source)
during that wait would have to wait too. The worker therefore opens streams
through `open_source_stoppable`: a stream that cannot be reached at all fails
at once (`StreamUnavailable`), reconnection attempts after a drop watch the
worker's stop event, and a stop request ends them at once with
`OpeningCancelled`. Cameras, files and folders open quickly and go straight to
`open_source`.
"""

from __future__ import annotations

import threading
import time

import cv2

from pipeline.capture import LiveSource, Source, is_stream_url, open_source


class OpeningCancelled(Exception):
    """The source was still being opened when its worker was asked to stop."""


class StreamUnavailable(ConnectionError):
    """The stream could not be opened at all on the first try (refused, wrong address, nothing streaming)."""


class StoppableStreamOpener:
    """`LiveSource`'s `open_capture` for a URL: fails fast on the first connection, retries after a drop.

    The first call makes one attempt: a refused connection or a wrong address
    fails at once with `StreamUnavailable` (not a `SourceError`, so
    `LiveSource` gives up instead of retrying, and the window says so within
    a second instead of showing "Opening…" for many). Once the stream has
    opened, a later call (a reconnect after a drop) retries for at most
    `budget_s` and then returns the closed capture, so `LiveSource` goes on
    with its own reconnect policy. `stop` ends every wait at once by raising
    `OpeningCancelled` (the reader thread then ends, and `LiveSource`'s
    constructor with it).
    """

    def __init__(self, url: str, stop: threading.Event, *, retry_s: float = 0.25, max_retry_s: float = 2.0,
                 budget_s: float = 5.0) -> None:
        self.url = url
        self._stop = stop
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._budget_s = budget_s
        self._opened_once = False

    def __call__(self) -> cv2.VideoCapture:
        if not self._opened_once:
            if self._stop.is_set():
                raise OpeningCancelled(f"{self.url}: opening cancelled")
            capture = cv2.VideoCapture(self.url)
            if not capture.isOpened():
                capture.release()
                raise StreamUnavailable("cannot connect (connection refused, wrong address, or nothing streaming "
                                        "there); check the URL and that the camera or server is on")
            self._opened_once = True
            return capture
        deadline = time.monotonic() + self._budget_s
        delay_s = self._retry_s
        while True:
            if self._stop.is_set():
                raise OpeningCancelled(f"{self.url}: opening cancelled")
            capture = cv2.VideoCapture(self.url)
            if capture.isOpened():
                return capture
            capture.release()
            if time.monotonic() + delay_s > deadline:
                return capture
            if self._stop.wait(delay_s):
                raise OpeningCancelled(f"{self.url}: opening cancelled")
            delay_s = min(2 * delay_s, self._max_retry_s)


def open_source_stoppable(spec: str, stop: threading.Event, start_index: int = 0) -> Source:
    """`open_source(spec, start_index=...)`, except that a stream being opened gives up as soon as `stop` is set.

    Raises `OpeningCancelled` (wrapped in the `SourceError` that `LiveSource`
    raises) when stopped, and the errors of `open_source` otherwise.
    """
    if is_stream_url(spec):
        return LiveSource(StoppableStreamOpener(spec, stop), name=spec, reconnect=True)
    return open_source(spec, start_index=start_index)
