"""`PoseEstimator`: top-down HRNet inference on person boxes, exact to the official test path.

    est = PoseEstimator.from_config("coco/w32_256x192", weights="hrnet_w32_coco_256x192")
    keypoints, scores = est(image_bgr, boxes_xyxy)   # (N, J, 2) float32 image px, (N, J) float32

Steps (FACTS sections 3-5): box -> (center, scale); `cv2.warpAffine` crop of
the uint8 image with the official float32 matrix; BGR -> RGB when the config
says COLOR_RGB; ImageNet normalisation; one network call per chunk of crops
(the flipped crops in the same call when the flip test is on); flip-back,
one-column shift and average; argmax + quarter offset (or DARK); back to image
pixels. All crops of all images of one `estimate_many` call share batches.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import pose
from pose.backends import check_backend, make_runtime, weights_id
from pose.codec import HeatmapCodec
from pose.runtime import Runtime, TorchRuntime
from core.skeletons import KeypointSet, keypoint_set
from pose.config import config_path
from pose.transforms import boxes_to_centers_scales, network_input
from pose.weights import REGISTRY

logger = logging.getLogger(__name__)


def _check_image(image: np.ndarray, index: int) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"image {index} must be an (H, W, 3) uint8 BGR array, got shape {shape} dtype {dtype}")


def _check_boxes(boxes, index: int) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4), np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes of image {index} must have shape (N, 4), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"boxes of image {index} contain NaN or infinite values")
    return array


def _runtime_name(runtime) -> str:
    """A runtime's backend name where it does not say it: eager torch by its dtype, else its class."""
    if isinstance(runtime, TorchRuntime):
        return {"float32": "torch", "float16": "fp16", "bfloat16": "bf16"}[str(runtime.dtype).removeprefix("torch.")]
    return type(runtime).__name__


class PoseEstimator:
    """Keypoints of the people in given boxes.

    Args:
        runtime: network call, (N, 3, H, W) float32 -> (N, J, H/4, W/4) float32.
        codec: heatmap decoding and flip-back.
        keypoint_set: keypoint names, flip pairs, skeleton, OKS sigmas.
        input_size: (w, h) network input px.
        color_rgb: convert BGR images to RGB before normalising (official DATASET.COLOR_RGB).
        flip_test: average with the mirrored crops (official TEST.FLIP_TEST).
        batch_size: crops per network call (the flip test doubles the call's batch).
    """

    def __init__(
        self,
        runtime: Runtime,
        codec: HeatmapCodec,
        keypoint_set: KeypointSet,
        input_size: tuple[int, int],
        color_rgb: bool = True,
        flip_test: bool = True,
        batch_size: int = 32,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.runtime = runtime
        self.codec = codec
        self.keypoint_set = keypoint_set
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.color_rgb = color_rgb
        self.flip_test = flip_test
        self.last_timings_s: dict[str, float] = {}  # seconds of the last estimate_many: crop, network, decode
        # Crops through the network so far, counted per network call: progress displays read it
        # from another thread to show movement inside a frame with many people.
        self.crops_done = 0
        self.batch_size = int(batch_size)

    @classmethod
    def from_config(
        cls,
        config,
        weights: str | os.PathLike | None = None,
        device: str = "cpu",
        flip_test: bool | None = True,
        decoding: str = "official",
        batch_size: int = 32,
        offline: bool | None = None,
        dtype: str = "float32",
        backend: str = "torch",
        cache_dir: str | os.PathLike | None = None,
        calibration: Sequence[str | os.PathLike] | None = None,
    ) -> "PoseEstimator":
        """Build the network of an experiment and load its weights.

        Args:
            config: YAML path, registry name, official-schema dict or ExperimentConfig.
            weights: checkpoint path or weights registry name; None leaves the
                network randomly initialised (PyTorch defaults; for tests only).
            device: "cpu", "cuda", "cuda:N".
            flip_test: True/False, or None to follow the config's TEST.FLIP_TEST.
            decoding: "official" (quarter offset) or "dark".
            offline: forbid downloads of named weights (None reads HRTRACK_OFFLINE).
            dtype: "float32" (exact) or "float16" (CUDA only); backend "torch" only.
            backend: a `pose.backends.BACKENDS` name ("torch": eager, the reference; "auto": the
                fastest that agrees with it).
            cache_dir: compiled/exported network cache (None: $HRTRACK_CACHE/backends).
            calibration: backend "onnxruntime-int8": images/videos to calibrate on (None: the reference images).
        """
        check_backend(backend)

        experiment = pose.load_config(config)
        model = pose.build_model(experiment)
        path = None
        if weights is None:
            logger.warning("no pose weights given: the network keeps its random initialisation")
        else:
            path = pose.resolve_weights(weights, offline=offline)
            pose.load_weights(model, path)
            logger.info("loaded pose weights %s", path)
        keypoints = keypoint_set(experiment.dataset.name, experiment.model.num_joints)
        codec = HeatmapCodec.from_config(experiment, keypoints.flip_pairs, decoding=decoding)
        flip = bool(experiment.test.flip_test) if flip_test is None else bool(flip_test)
        if backend == "torch":
            runtime = TorchRuntime(model, device=device, dtype=dtype)
        else:
            if dtype != "float32":
                raise ValueError(f"dtype {dtype!r} goes with backend 'torch'; backend {backend!r} sets its own precision")
            # The largest call infer_heatmaps makes: a chunk of crops, doubled by the flip test.
            runtime = make_runtime(backend, model, device=device, max_batch=batch_size * (2 if flip else 1),
                                   input_size=tuple(experiment.model.image_size),
                                   weights_id=weights_id(model if path is None else path, experiment),
                                   cache_dir=cache_dir, calibration=calibration, config=experiment)
        return cls(
            runtime,
            codec,
            keypoints,
            input_size=tuple(experiment.model.image_size),
            color_rgb=bool(experiment.dataset.color_rgb),
            flip_test=flip,
            batch_size=batch_size,
        )

    # Metadata -----------------------------------------------------------------

    @property
    def num_keypoints(self) -> int:
        return self.keypoint_set.num_keypoints

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.keypoint_set.keypoint_names

    @property
    def skeleton(self) -> tuple[tuple[int, int], ...]:
        """0-based keypoint index pairs to connect when drawing."""
        return self.keypoint_set.skeleton

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        return self.keypoint_set.flip_pairs

    @property
    def sigmas(self) -> np.ndarray | None:
        """(J,) COCO OKS sigmas, or None (MPII)."""
        return None if self.keypoint_set.sigmas is None else self.keypoint_set.sigmas.copy()

    @property
    def device(self) -> str:
        """Where the network runs ("cpu", "cuda:0", ...), as the runtime reports it."""
        return str(getattr(self.runtime, "device", "cpu"))

    def describe_backend(self) -> dict:
        """Which backend runs the network and how close it is to eager fp32, for logs and output metadata.

        {"backend": name, ...}; `--backend auto` adds "requested", "history" (backend from which call on),
        "reason", and "agreement" (OKS and px against eager fp32 on the reference people).
        """
        describe = getattr(self.runtime, "describe", None)
        if describe is not None:
            return describe()
        name = getattr(self.runtime, "name", None)
        return {"backend": name.removesuffix("-fp32") if name else _runtime_name(self.runtime)}

    def close(self) -> None:
        """Release what the runtime holds beyond memory (`--backend auto`: its background build)."""
        close = getattr(self.runtime, "close", None)
        if close is not None:
            close()

    @property
    def aspect_ratio(self) -> float:
        return self.input_size[0] * 1.0 / self.input_size[1]

    # Steps --------------------------------------------------------------------

    def centers_scales(self, boxes, box_format: str = "xyxy") -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) image px boxes -> centers (N, 2) float32 px, scales (N, 2) float32 (units of 200 px)."""
        return boxes_to_centers_scales(boxes, self.aspect_ratio, box_format)

    def preprocess(self, image_bgr: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Crops of one image as network input.

        Args:
            image_bgr: (H, W, 3) uint8 BGR (as cv2.imread returns).
            centers, scales: (N, 2) float32 crop parameters.

        Returns:
            (N, 3, h, w) float32 normalised crops (RGB order when color_rgb).
        """
        return network_input(image_bgr, centers, scales, self.input_size, self.color_rgb)

    def infer_heatmaps(self, batch: np.ndarray) -> np.ndarray:
        """Network (+ flip test) on normalised crops, chunked by `batch_size`.

        Args:
            batch: (N, 3, h, w) float32.

        Returns:
            (N, J, h/4, w/4) float32 heatmaps, flip-test averaged when flip_test.
        """
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start:start + self.batch_size]
            if self.flip_test:
                both = self.runtime(np.concatenate([chunk, chunk[..., ::-1]], axis=0))
                outputs.append(self.codec.merge_flip(both[: len(chunk)], both[len(chunk):]))
            else:
                outputs.append(np.asarray(self.runtime(chunk), dtype=np.float32))
            self.crops_done += len(chunk)
        return np.concatenate(outputs, axis=0)

    # Public calls ---------------------------------------------------------------

    def __call__(self, image_bgr: np.ndarray, boxes, box_format: str = "xyxy") -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of the people in `boxes` of one image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR.
            boxes: (N, 4) image px, [x1, y1, x2, y2] (or [x, y, w, h] with box_format="xywh").

        Returns:
            keypoints (N, J, 2) float32 image px; scores (N, J) float32 heatmap maxima.
        """
        return self.estimate_many([image_bgr], [boxes], box_format=box_format)[0]

    def estimate_many(
        self, images_bgr: Sequence[np.ndarray], boxes_per_image: Sequence, box_format: str = "xyxy"
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """All crops of all images through shared network batches.

        Args:
            images_bgr: list of (H, W, 3) uint8 BGR images.
            boxes_per_image: one (N_i, 4) box array per image (image px).

        Returns:
            one (keypoints (N_i, J, 2) float32 px, scores (N_i, J) float32) per image.
        """
        if len(images_bgr) != len(boxes_per_image):
            raise ValueError(f"{len(images_bgr)} images but {len(boxes_per_image)} box arrays")
        started = time.perf_counter()
        centers, scales, batches, counts = [], [], [], []
        for index, (image, boxes) in enumerate(zip(images_bgr, boxes_per_image)):
            _check_image(image, index)
            boxes = _check_boxes(boxes, index)
            image_centers, image_scales = self.centers_scales(boxes, box_format)
            centers.append(image_centers)
            scales.append(image_scales)
            counts.append(len(boxes))
            if len(boxes):
                batches.append(self.preprocess(image, image_centers, image_scales))
        if sum(counts) == 0:
            return [self._empty() for _ in counts]
        cropped = time.perf_counter()
        heatmaps = self.infer_heatmaps(np.concatenate(batches, axis=0))
        inferred = time.perf_counter()
        keypoints, scores = self.codec.decode(heatmaps, np.concatenate(centers), np.concatenate(scales))
        # Where the call's time went (the pipeline's --profile reads it after each call).
        self.last_timings_s = {"crop": cropped - started, "network": inferred - cropped,
                               "decode": time.perf_counter() - inferred}
        results = []
        start = 0
        for count in counts:
            results.append((keypoints[start:start + count], scores[start:start + count]))
            start += count
        return results

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((0, self.num_keypoints, 2), np.float32), np.zeros((0, self.num_keypoints), np.float32)

    def __repr__(self) -> str:
        return (
            f"PoseEstimator(keypoints={self.keypoint_set.name}x{self.num_keypoints}, input={self.input_size}, "
            f"flip_test={self.flip_test}, decoding={self.codec.decoding}, batch_size={self.batch_size})"
        )


def weights_name_for_config(config_name: str | os.PathLike) -> str | None:
    """The registry weights name matching an experiment (registry name or YAML path), or None."""
    try:
        target = Path(config_path(config_name)).resolve()
    except FileNotFoundError:
        return None
    for entry in REGISTRY.values():
        try:
            if Path(config_path(entry.config)).resolve() == target:
                return entry.name
        except FileNotFoundError:
            continue
    return None
