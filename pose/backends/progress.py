"""A clock for the long silent steps of building a backend (ONNX export, int8 quantisation, compiling).

    with elapsed("exporting the pose network to ONNX", expected="20-60 s for HRNet-W32 on 2 cores"):
        export(...)

On a terminal: a line that counts the seconds while the step runs (tqdm, on
stderr: the ONNX exporter redirects stdout and silences logging while it runs,
which is why the steps were silent). Elsewhere (logs, pipes, the background
build): one log line when it starts and one when it ends, so the two never
run together.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator

from tqdm import tqdm

logger = logging.getLogger(__name__)

TICK_S = 1.0


@contextlib.contextmanager
def elapsed(what: str, expected: str = "") -> Iterator[None]:
    """Show `what` with a running count of seconds while the block runs; log how long it took."""
    started = time.perf_counter()
    logger.info("%s%s", what, f" ({expected})" if expected else "")
    interactive = sys.stderr.isatty()
    stop = threading.Event()
    ticker = None
    if interactive:
        bar = tqdm(desc=what, bar_format="{desc}: {elapsed}", file=sys.stderr, leave=False)

        def tick() -> None:
            while not stop.wait(TICK_S):
                bar.refresh()

        ticker = threading.Thread(target=tick, name="elapsed", daemon=True)
        ticker.start()
    try:
        yield
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
            bar.close()
        logger.info("%s: done in %.1f s", what, time.perf_counter() - started)
