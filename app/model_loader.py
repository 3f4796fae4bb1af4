"""Build the detector and pose model in the background, reporting progress.

Loading a large HRNet (and moving it to the GPU) takes seconds; doing it on
the GUI thread would freeze the window, and doing it in the worker would stop
the video. The loader builds the new models on its own thread while the old
ones keep running, then hands them over with a signal.

The models are described by an `argparse.Namespace` holding the options of
`cli.options.add_pose_arguments` and
`cli.options.add_detector_arguments`, so the window builds exactly
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

from app.errors import explain_load_error
from pipeline.models import build_detector, build_estimator
from pose.weights import REGISTRY

logger = logging.getLogger(__name__)

# progress(percent 0..100, what is happening)
ProgressCallback = Callable[[int, str], None]


@dataclass(frozen=True)
class LoadedModels:
    """A detector and a pose estimator that work together.

    Attributes:
        detector: callable list[Frame] -> list[Detections].
        estimator: a `pose.PoseEstimator` (or anything with its call signature
            and `num_keypoints`, `skeleton`).
        device: where they run, as shown to the person ("cpu", "cuda:0").
        label: a short name of the pose model for the status line.
    """

    detector: Any
    estimator: Any
    device: str
    label: str

    @property
    def num_keypoints(self) -> int:
        return int(getattr(self.estimator, "num_keypoints", 17))


def describe_model(args: argparse.Namespace) -> str:
    """A short label for the pose model the options select."""
    weights = getattr(args, "pose_weights", None)
    config = getattr(args, "pose_config", None)
    name = weights if weights and "/" not in str(weights) and "\\" not in str(weights) else config
    return str(name or "default").replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".yaml")


@dataclass(frozen=True)
class ModelRequest:
    """The models the person picked in the window ("" for "as before").

    Attributes:
        pose_config: an official-schema YAML path or config name.
        pose_weights: a registry name or a checkpoint path.
        detector: "auto" or a torchvision builder name (a network detector).
        det_file: a COCO-results detection file to read boxes from instead.
        backend: how the pose network runs (a `pose.backends.BACKENDS` name).
        det_weights: a local state dict for the network detector (`--det-weights`).
    """

    pose_config: str = ""
    pose_weights: str = ""
    backend: str = ""
    detector: str = ""
    det_file: str = ""
    det_weights: str = ""


def with_models(args: argparse.Namespace, request: ModelRequest) -> argparse.Namespace:
    """A copy of `args` selecting the models of `request` (the rest unchanged).

    Without a config, a registry weights name brings its own config; other
    weights keep the current config. A detection file replaces the network
    detector and the other way round; weights given for one network do not
    follow a change to another.
    """
    new_args = copy.copy(args)
    pose_config, pose_weights = request.pose_config or None, request.pose_weights or None
    if pose_config or pose_weights:
        if not pose_config and pose_weights:
            entry = REGISTRY.get(pose_weights)
            pose_config = entry.config if entry is not None else getattr(args, "pose_config", None)
        new_args.pose_config = pose_config or getattr(args, "pose_config", None)
        new_args.pose_weights = pose_weights
    if request.backend:
        new_args.backend = request.backend
    if request.det_file:
        new_args.det_file, new_args.gt_boxes, new_args.detector, new_args.det_weights = request.det_file, None, None, None
    elif request.detector:
        name = None if request.detector == "auto" else request.detector
        if name != getattr(args, "detector", None) or getattr(args, "det_file", None) or getattr(args, "gt_boxes", None):
            new_args.det_weights = None
        new_args.detector, new_args.det_file, new_args.gt_boxes = name, None, None
    if request.det_weights and not request.det_file:
        new_args.det_weights = request.det_weights
    return new_args


def describe_detector(args: argparse.Namespace) -> str:
    """The detector the options select, as the detector list in the window names it."""
    if getattr(args, "det_file", None):
        return f"file: {args.det_file}"
    if getattr(args, "gt_boxes", None):
        return f"ground truth: {args.gt_boxes}"
    return getattr(args, "detector", None) or "auto"


def model_device(estimator: Any, fallback: str | None) -> str:
    """Where the estimator's network runs ("cpu", "cuda:0"), for the status line."""
    device = getattr(getattr(estimator, "runtime", None), "device", None) or getattr(estimator, "device", None)
    return str(device or fallback or "cpu")


def build_models(args: argparse.Namespace, progress: ProgressCallback) -> LoadedModels:
    """Build the models `args` selects with the shared CLI builders, then warm them up.

    The warm-up runs the pose network once on a blank crop so that a swap to
    the new model does not stall the video on its first frame, and so that a
    GPU out-of-memory error shows up here rather than mid-video.
    """
    progress(5, "building the person detector")
    detector = build_detector(args)
    progress(40, "building the pose model and loading its weights")
    estimator = build_estimator(args, detector)
    progress(85, "warming up the pose model")
    blank = np.zeros((64, 48, 3), np.uint8)
    estimator(blank, np.array([[0.0, 0.0, 48.0, 64.0]], np.float32))
    device = model_device(estimator, getattr(args, "device", None))
    progress(100, "ready")
    return LoadedModels(detector=detector, estimator=estimator, device=device, label=describe_model(args))


class ModelLoader(QObject):
    """Loads `LoadedModels` on a background thread, one request at a time.

    Signals:
        progress(int, str): percent done and the current step.
        loaded(object): the new `LoadedModels`, for the request that is still current.
        failed(str): a message for the person.

    The thread is a daemon: a load cannot be interrupted inside torch, so a
    window closed mid-load must not wait for it. A result that arrives after
    `cancel()` (or after a newer request) is dropped.
    """

    progress = pyqtSignal(int, str)
    loaded = pyqtSignal(object)
    failed = pyqtSignal(str)

    def __init__(self, builder: Callable[[argparse.Namespace, ProgressCallback], LoadedModels] = build_models,
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
            logger.debug("model loader: receiver gone, result dropped")

    def _run(self, args: argparse.Namespace, request: int) -> None:
        started = time.monotonic()
        try:
            models = self._builder(args, lambda percent, step: self._emit(request, self.progress, percent, step))
        except Exception as error:  # noqa: BLE001 - any failure is reported in the window
            logger.warning("model loading failed: %s", error, exc_info=logger.isEnabledFor(logging.DEBUG))
            self._emit(request, self.failed, explain_load_error(error))
            return
        logger.info("loaded %s on %s in %.1f s", models.label, models.device, time.monotonic() - started)
        self._emit(request, self.loaded, models)
