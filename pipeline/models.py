"""The detector and pose estimator that a set of command-line options describes.

`settings` is any object with the attributes that `cli.options` defines
(an `argparse.Namespace` from the CLI, or the GUI's copy of it), so `track`,
`gui`, `posetrack run` and `coco eval` build exactly the same models from the
same flags. torch loads only when a builder runs.
"""

from __future__ import annotations

from core.environment import resolve_device
from detector.file_detector import FileDetector
from detector.ground_truth import GroundTruthDetector
from pipeline.work import Models
from pose.estimator import PoseEstimator, weights_name_for_config
from pose.weights import REGISTRY, WeightsUnavailableError, resolve_weights
from tracker import PoseTracker


# Crops per network call by device type, chosen by measurement
# (benchmarks/pose_throughput.py): on a 2-core CPU, 8-crop calls ran about 10%
# faster per crop than 32-crop calls (cache-sized activations); a GPU wants
# large batches. `--batch-size` overrides.
DEFAULT_BATCH_SIZE = {"cpu": 8, "cuda": 64}


def default_batch_size(device: str) -> int:
    """Crops per network call for `device` ("cpu", "cuda", "cuda:1", ...)."""
    return DEFAULT_BATCH_SIZE.get(str(device).split(":")[0], DEFAULT_BATCH_SIZE["cpu"])


def build_estimator(settings, detector=None):
    """The `pose.PoseEstimator` that `settings` (the `cli.options` pose flags) describe.

    detector: where int8 calibration finds the people in `--calibration`'s images and videos (each
    frame's boxes are cropped as the estimator crops them); None builds the one `settings` describe,
    and only when int8 can be used.

    Raises ValueError when no weights are given and no weights name matches
    the config, FileNotFoundError for a missing config or weights file.
    """
    weights = settings.pose_weights
    if weights is None:
        weights = weights_name_for_config(settings.pose_config)
        if weights is None:
            raise ValueError(
                f"no known weights match the pose config {settings.pose_config!r}: pass --pose-weights PATH_OR_NAME"
            )
    device = resolve_device(settings.device)
    backend = getattr(settings, "backend", "torch")
    calibration = getattr(settings, "calibration", None)
    if calibration and uses_int8(backend, device):
        calibration = person_calibration_crops(settings, calibration, detector)
    return PoseEstimator.from_config(
        settings.pose_config,
        weights=weights,
        device=device,
        flip_test=settings.flip_test,
        decoding=settings.decoding,
        batch_size=settings.batch_size or default_batch_size(device),
        offline=True if settings.offline else None,
        backend=backend,
        calibration=calibration,
    )


def uses_int8(backend: str, device: str) -> bool:
    """True when `backend` on `device` runs or may choose static int8 (and so needs calibration crops)."""
    from pose.backends.hardware import auto_candidates  # noqa: PLC0415  (reads /proc/cpuinfo; only for int8)

    return backend == "onnxruntime-int8" or (backend == "auto" and "onnxruntime-int8" in auto_candidates(device))


def person_calibration_crops(settings, paths, detector=None):
    """(N, 3, h, w) float32 int8 calibration crops: the people the detector finds in `paths`, and their mirror images.

    Person crops, not whole frames: on the trained test network int8 calibrated on person boxes moved
    keypoints 12.5 px from fp32 against 19.8 px for whole frames (pose.backends.calibration).
    """
    import pose  # noqa: PLC0415  (the config loader, only for int8 calibration)
    from pose.backends.calibration import calibration_crops, check_calibration_paths  # noqa: PLC0415  (as above)

    check_calibration_paths(paths)  # before building a detector: a typo fails at once
    if detector is None:
        detector = build_detector(settings, device="cpu")
    experiment = pose.load_config(settings.pose_config)
    width, height = experiment.model.image_size
    return calibration_crops(paths, (int(height), int(width)), color_rgb=bool(experiment.dataset.color_rgb),
                             boxes_for=lambda frame: detector([frame])[0].boxes)


def build_detector(settings, device: str | None = None):
    """The detector `settings` describe: a file, ground truth, or a torchvision network.

    `device` overrides `settings.device` (from the pose options); None or "auto"
    picks CUDA when available.
    """
    if settings.det_file is not None or settings.gt_boxes is not None:
        if settings.detector is not None or settings.det_weights is not None:
            raise ValueError("--detector/--det-weights cannot be combined with --det-file or --gt-boxes")
        if settings.gt_boxes is not None:
            return GroundTruthDetector(settings.gt_boxes, key=settings.det_image_key)
        return FileDetector(
            settings.det_file,
            annotation_path=settings.det_annotations,
            key=settings.det_image_key,
            score_threshold=settings.det_threshold,
            min_box_size_px=settings.det_min_size,
        )

    from detector.torchvision_detector import build_detector as build_network_detector  # noqa: PLC0415 - loads torch

    return build_network_detector(
        settings.detector or "auto",
        weights=settings.det_weights,
        device=resolve_device(device if device is not None else getattr(settings, "device", None)),
        score_threshold=settings.det_threshold,
        min_box_size_px=settings.det_min_size,
        nms_iou_threshold=settings.det_nms,
        half=settings.det_half,
        offline=True if getattr(settings, "offline", False) else None,
    )


def fetch_model_weights(settings) -> None:
    """Make every named weights file the models of `settings` need local (downloading what may be downloaded).

    Raises one `WeightsUnavailableError` that lists every file missing (the
    pose network's and the person detector's), so that an offline first run
    learns about all of them at once, not one per try.
    """
    missing = []
    pose_weights = settings.pose_weights or weights_name_for_config(settings.pose_config)
    if pose_weights in REGISTRY:
        try:
            resolve_weights(pose_weights, offline=True if settings.offline else None)
        except WeightsUnavailableError as error:
            missing.append(str(error))
    if settings.det_file is None and settings.gt_boxes is None and settings.det_weights is None:
        from detector.torchvision_detector import (  # noqa: PLC0415 - loads torch
            DetectorWeightsError,
            fetch_pretrained_weights,
            resolve_detector_name,
        )

        name = resolve_detector_name(settings.detector or "auto", resolve_device(settings.device))
        try:
            fetch_pretrained_weights(name, offline=True if settings.offline else None)
        except DetectorWeightsError as error:
            missing.append(str(error))
    if missing:
        listed = "\n".join(f"{number}. {text}" for number, text in enumerate(missing, 1))
        raise WeightsUnavailableError(f"{len(missing)} weights file(s) this run needs are missing:\n{listed}")


def build_track_models(settings, tracker_options: dict | None):
    """The `pipeline.work.Models` of `track`: estimator, detector, and a tracker (None: IDs of -1).

    Module-level and fed plain data (`settings`, an argparse Namespace; the
    `tracker.PoseTracker` options), so that `functools.partial(build_track_models, ...)`
    pickles: each Ray worker builds its models with it, the local engine once.
    Every weights file is looked for first (`fetch_model_weights`).
    """
    fetch_model_weights(settings)
    detector = build_detector(settings, device=settings.device)
    estimator = build_estimator(settings, detector)
    tracker = None
    if tracker_options is not None:
        tracker = PoseTracker(**tracker_options)
    return Models(detector, estimator, tracker)
