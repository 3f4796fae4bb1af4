"""Build the detector and pose model in the background, reporting progress.

Loading a large HRNet (and moving it to the GPU) takes seconds; doing it on
the GUI thread would freeze the window, and doing it in the worker would stop
the video. The loader builds the new models on its own thread while the old
ones keep running, then hands them over with a signal.

The models are described by an `argparse.Namespace` holding the options of
`cli.options.add_pose_arguments` and
`cli.detector_options.add_detector_arguments`, so the window builds exactly
what `track` would build from the same command line.
"""

from __future__ import annotations

import argparse
import copy
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

LOG = logging.getLogger(__name__)

# progress(percent 0..100, what is happening)
ProgressCallback = Callable[[int, str], None]


@dataclass(frozen=True)
class Models:
    """A detector and a pose estimator that work together.

    Attributes:
        detector: callable list[Frame] -> list[Detections].
        estimator: a `pose.PoseEstimator` (or anything with its call signature
            and `num_joints`, `skeleton`).
        device: where they run, as shown to the person ("cpu", "cuda:0").
        label: a short name of the pose model for the status line.
    """

    detector: Any
    estimator: Any
    device: str
    label: str

    @property
    def num_joints(self) -> int:
        return int(getattr(self.estimator, "num_joints", 17))


def describe_model(args: argparse.Namespace) -> str:
    """A short label for the pose model the options select."""
    weights = getattr(args, "pose_weights", None)
    config = getattr(args, "pose_config", None)
    name = weights if weights and "/" not in str(weights) and "\\" not in str(weights) else config
    return str(name or "default").replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".yaml")


def with_pose_model(args: argparse.Namespace, pose_config: str | None, pose_weights: str | None) -> argparse.Namespace:
    """A copy of `args` selecting another pose model (the rest unchanged).

    Without a config, a registry weights name brings its own config; other
    weights keep the current config.
    """
    new_args = copy.copy(args)
    if not pose_config and pose_weights:
        from pose.weights import REGISTRY

        entry = REGISTRY.get(pose_weights)
        pose_config = entry.config if entry is not None else getattr(args, "pose_config", None)
    new_args.pose_config = pose_config or getattr(args, "pose_config", None)
    new_args.pose_weights = pose_weights or None
    return new_args


def model_device(estimator: Any, fallback: str | None) -> str:
    """Where the estimator's network runs ("cpu", "cuda:0"), for the status line."""
    device = getattr(getattr(estimator, "runtime", None), "device", None) or getattr(estimator, "device", None)
    return str(device or fallback or "cpu")


def build_models(args: argparse.Namespace, progress: ProgressCallback) -> Models:
    """Build the models `args` selects with the shared CLI builders, then warm them up.

    The warm-up runs the pose network once on a blank crop so that a swap to
    the new model does not stall the video on its first frame, and so that a
    GPU out-of-memory error shows up here rather than mid-video.
    """
    from pipeline.models import build_detector
    from pipeline.models import build_estimator

    progress(5, "building the person detector")
    detector = build_detector(args)
    progress(40, "building the pose model and loading its weights")
    estimator = build_estimator(args)
    progress(85, "warming up the pose model")
    blank = np.zeros((64, 48, 3), np.uint8)
    estimator(blank, np.array([[0.0, 0.0, 48.0, 64.0]], np.float32))
    device = model_device(estimator, getattr(args, "device", None))
    progress(100, "ready")
    return Models(detector=detector, estimator=estimator, device=device, label=describe_model(args))


def explain_load_error(error: BaseException) -> str:
    """A message for the person: what failed while loading, and what to try."""
    text = str(error) or type(error).__name__
    if "out of memory" in text.lower():
        return f"Not enough GPU memory to load the model ({text}). Try a smaller model or --device cpu."
    if isinstance(error, FileNotFoundError):
        return f"Model weights or config not found: {text}"
    return f"Could not load the model: {text}"


class ModelLoader(QObject):
    """Loads `Models` on a background thread, one request at a time.

    Signals:
        progress(int, str): percent done and the current step.
        loaded(object): the new `Models`, for the request that is still current.
        failed(str): a message for the person.

    The thread is a daemon: a load cannot be interrupted inside torch, so a
    window closed mid-load must not wait for it. A result that arrives after
    `cancel()` (or after a newer request) is dropped.
    """

    progress = pyqtSignal(int, str)
    loaded = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, builder: Callable[[argparse.Namespace, ProgressCallback], Models] = build_models,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._builder = builder
        self._lock = threading.Lock()
        self._request = 0
        self._threads: list[threading.Thread] = []

    def load(self, args: argparse.Namespace) -> None:
        """Start building the models `args` describes; an older pending request is superseded."""
        with self._lock:
            self._request += 1
            request = self._request
        thread = threading.Thread(target=self._run, args=(args, request), name=f"model-loader-{request}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def cancel(self) -> None:
        """Drop the results of every request made so far."""
        with self._lock:
            self._request += 1

    def is_loading(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def wait(self, timeout_s: float) -> bool:
        """Wait for the loader threads; True when none is left running."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self.is_loading()

    def _current(self, request: int) -> bool:
        with self._lock:
            return request == self._request

    def _emit(self, request: int, signal: Any, *values: Any) -> None:
        if not self._current(request):
            return
        try:
            signal.emit(*values)
        except RuntimeError:
            # The window (and this QObject) was destroyed while loading.
            LOG.debug("model loader: receiver gone, result dropped")

    def _run(self, args: argparse.Namespace, request: int) -> None:
        started = time.monotonic()
        try:
            models = self._builder(args, lambda percent, step: self._emit(request, self.progress, percent, step))
        except Exception as error:  # noqa: BLE001 - any failure is reported in the window
            LOG.warning("model loading failed: %s", error, exc_info=LOG.isEnabledFor(logging.DEBUG))
            self._emit(request, self.failed, explain_load_error(error))
            return
        LOG.info("loaded %s on %s in %.1f s", models.label, models.device, time.monotonic() - started)
        self._emit(request, self.loaded, models)
