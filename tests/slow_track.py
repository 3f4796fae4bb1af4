"""`main.py` with a slow pose stage, for the Ctrl-C tests (run as a subprocess).

    python tests/slow_track.py SECONDS_PER_CALL track VIDEO --out ... (the usual track arguments)

Every `PoseEstimator.estimate_many` call first keeps torch busy for
SECONDS_PER_CALL in the pose thread (matrix products in torch's own threads),
standing in for a long model call that cannot be interrupted: an interpreter
that exits under such a call is what aborted with SIGABRT. With the environment
variable SLOW_TRACK_MARKER set, each call first touches that file, so a test
knows when a call is in flight; with SLOW_TRACK_LOG set, each call appends
"start" to that file when it begins and "end" when it returns, so a test can
tell whether the process exited inside a call or after it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import main  # noqa: E402
from pose.estimator import PoseEstimator  # noqa: E402


def _busy_torch(seconds: float) -> None:
    import torch  # noqa: PLC0415 - already loaded by the estimator

    matrix = torch.rand(256, 256)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        matrix = torch.tanh(matrix @ matrix)


def _log(word: str) -> None:
    log = os.environ.get("SLOW_TRACK_LOG")
    if log:
        with open(log, "a") as file:
            file.write(word + "\n")


def _slowed(estimate_many, seconds: float):
    def run(self, *args, **kwargs):
        _log("start")
        marker = os.environ.get("SLOW_TRACK_MARKER")
        if marker:
            Path(marker).touch()
        _busy_torch(seconds)
        result = estimate_many(self, *args, **kwargs)
        _log("end")
        return result

    return run


if __name__ == "__main__":
    PoseEstimator.estimate_many = _slowed(PoseEstimator.estimate_many, float(sys.argv[1]))
    sys.exit(main.main(sys.argv[2:]))
