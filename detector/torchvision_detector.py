"""Person detection with torchvision's COCO detectors.

A `TorchvisionDetector` runs one network call for a whole list of frames and
returns, per frame, the person boxes in that frame's own pixels.

Weights come from torchvision's weights API: the builder's DEFAULT weights
enum gives the file URL, and the file is fetched once into torch's hub cache
(`torch.hub.get_dir()/checkpoints`) with the SHA-256 prefix in its name
checked, exactly where and how torchvision itself would put it. Offline
(`HRTRACK_OFFLINE=1` or `offline=True`) a missing file is an error that names
the file, its URL and the folder to put it in. A local state dict
(`weights=PATH`) is loaded strictly.

Norm layers: torchvision builds several detectors with `FrozenBatchNorm2d`
when it loads pretrained weights and with `BatchNorm2d` otherwise (and, for
MobileNetV3, with a different epsilon). We always build without weights and
then, for every BatchNorm2d whose entry in the state dict has no
`num_batches_tracked` (the frozen layout), swap in `FrozenBatchNorm2d` as the
builder would have. The model then equals the one torchvision builds with
`weights=...` (tests check this) and local fine-tuned files of either layout
load strictly.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from core.environment import is_offline
from core.state_dicts import state_dict_differences
from core.types import Detections, Frame

logger = logging.getLogger(__name__)

PERSON_LABEL = 1  # index of "person" in torchvision's COCO category list (0 is background)
RANDOM_WEIGHTS = "random"  # weights value for an untrained model (tests, benchmarks)

# Builder name -> the keyword names its family uses for the score threshold and
# the internal resize (None: the family has a fixed input size).
_FAMILY_OPTIONS: dict[str, tuple[str, bool]] = {
    "fasterrcnn": ("box_score_thresh", True),
    "maskrcnn": ("box_score_thresh", True),
    "keypointrcnn": ("box_score_thresh", True),
    "retinanet": ("score_thresh", True),
    "fcos": ("score_thresh", True),
    "ssd300": ("score_thresh", False),
    "ssdlite320": ("score_thresh", False),
}


class DetectorWeightsError(FileNotFoundError):
    """Detector weights are not available (offline, download failed, or a bad local file)."""


def supported_detector_names() -> list[str]:
    """torchvision detection builder names this module can run."""
    names = torchvision.models.list_models(module=torchvision.models.detection)
    return sorted(name for name in names if _family(name) is not None)


def _family(name: str) -> str | None:
    return next((family for family in _FAMILY_OPTIONS if name.startswith(family)), None)


def hub_checkpoint_path(url: str) -> Path:
    """Where torchvision caches the file behind `url`: torch.hub.get_dir()/checkpoints/<file name>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url.split("?")[0])


def _missing_weights_message(name: str, url: str, target: Path, reason: str) -> str:
    return (
        f"Detector weights for '{name}' are not available: {reason}.\n"
        f"Fetch {target.name} from {url}\n"
        f"and put it at {target} (torch hub checkpoints folder; set TORCH_HOME to move it),\n"
        f"or pass a local state dict with --det-weights PATH."
    )


def fetch_pretrained_weights(name: str, offline: bool | None = None, progress: bool = True) -> Path:
    """Return the cached file of builder `name`'s DEFAULT weights, downloading it if allowed.

    The download goes to a temporary file and is checked against the SHA-256
    prefix in the file name (torchvision's `check_hash=True` rule) before it
    is moved into place.

    Raises:
        DetectorWeightsError: offline and not cached, or the download failed.
    """
    weights = torchvision.models.get_model_weights(name).DEFAULT
    target = hub_checkpoint_path(weights.url)
    if target.is_file():
        return target
    if is_offline(offline):
        raise DetectorWeightsError(_missing_weights_message(name, weights.url, target, "offline and not cached"))
    target.parent.mkdir(parents=True, exist_ok=True)
    match = re.search(r"-([a-f0-9]+)\.", target.name)
    logger.info("downloading %s to %s", weights.url, target)
    try:
        torch.hub.download_url_to_file(weights.url, str(target), match.group(1) if match else None, progress=progress)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a hash mismatch is a RuntimeError
        raise DetectorWeightsError(
            _missing_weights_message(name, weights.url, target, f"download failed ({error})")
        ) from error
    return target


def _load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise DetectorWeightsError(f"Detector weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise DetectorWeightsError(f"Cannot read detector weights {path}: {error}") from error
    # Checkpoints saved by training scripts wrap the state dict.
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise DetectorWeightsError(f"Detector weights {path} do not hold a state dict of tensors")
    return state


def _freeze_batch_norms_like(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Replace BatchNorm2d by FrozenBatchNorm2d where `state_dict` has the frozen layout."""
    for module_name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is not nn.BatchNorm2d:
                continue
            prefix = f"{module_name}.{child_name}" if module_name else child_name
            if f"{prefix}.running_mean" in state_dict and f"{prefix}.num_batches_tracked" not in state_dict:
                # Default epsilon on purpose: torchvision's builders construct it that way.
                setattr(module, child_name, FrozenBatchNorm2d(child.num_features))


def build_torchvision_model(
    name: str,
    weights: str | os.PathLike | None = None,
    offline: bool | None = None,
    score_threshold: float = 0.05,
    input_min_size_px: int | None = None,
    input_max_size_px: int | None = None,
) -> nn.Module:
    """Build torchvision detection builder `name` in eval mode on the CPU.

    Args:
        weights: None for the builder's DEFAULT COCO weights (cached download),
            a path to a local state dict, or "random" for an untrained model
            (seed torch first for reproducible weights).
        score_threshold: the model's own per-class score cut before its NMS.
        input_min_size_px / input_max_size_px: the internal resize of the
            R-CNN, RetinaNet and FCOS families (torchvision defaults 800/1333).
    """
    family = _family(name)
    if family is None or name not in torchvision.models.list_models(module=torchvision.models.detection):
        raise ValueError(f"Unknown detector '{name}'; choose one of: {', '.join(supported_detector_names())}")
    threshold_key, resizable = _FAMILY_OPTIONS[family]
    options: dict = {threshold_key: float(score_threshold)}
    if resizable:
        if input_min_size_px is not None:
            options["min_size"] = int(input_min_size_px)
        if input_max_size_px is not None:
            options["max_size"] = int(input_max_size_px)
    elif input_min_size_px is not None or input_max_size_px is not None:
        raise ValueError(f"Detector '{name}' has a fixed input size; input_min/max_size_px do not apply")

    # weights_backbone=None: never let torchvision fetch ImageNet backbone weights.
    model = torchvision.models.get_model(name, weights=None, weights_backbone=None, **options)
    if str(weights) == RANDOM_WEIGHTS:
        logger.warning("detector %s: random weights (no training): boxes are meaningless", name)
    else:
        path = fetch_pretrained_weights(name, offline=offline) if weights is None else Path(weights)
        state_dict = _load_state_dict_file(path)
        _freeze_batch_norms_like(model, state_dict)
        _check_fits(model, state_dict, path, name)
        model.load_state_dict(state_dict, strict=True)
        logger.info("detector %s: loaded %s", name, path)
    return model.eval()


def _check_fits(model: nn.Module, state_dict: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """DetectorWeightsError with counts and the first few keys when `state_dict` does not fit `model`.

    (torch's own message lists every key: 14.7 KB for a wrong builder.)
    """
    differences = state_dict_differences(
        {key: tuple(value.shape) for key, value in model.state_dict().items()},
        {key: tuple(value.shape) for key, value in state_dict.items()},
    )
    if differences:
        raise DetectorWeightsError(
            f"Detector weights {path} do not match torchvision's '{name}' "
            f"(is it a state dict for that builder?): " + "; ".join(differences) + "."
        )


class TorchvisionDetector:
    """Person boxes from a torchvision detector, one network call per list of frames.

    Filtering after the network, in order: person label only, score >=
    `score_threshold`, both box sides >= `min_box_size_px`, NMS at
    `nms_iou_threshold` (the R-CNN models already ran a per-class NMS at 0.5;
    this one lets a caller go stricter), then sorted by score, best first.

    Frames of different sizes may share a call: torchvision resizes each and
    pads them into one batch. Results then match per-frame calls only up to the
    padding's effect near the image border; same-size frames (a video) match.

    CPU threads: in the pipeline the detector runs beside the pose network
    (frame t+1 detected while frame t is posed), so on the CPU each call uses
    `cpu_threads` torch threads, by default half the cores: with both stages
    on all cores they fight for them (on 2 cores, one detector thread made
    the detector about 2x faster and the whole pipeline about 10% faster). The
    setting is per calling thread and restored after the call.
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "cpu",
        score_threshold: float = 0.5,
        min_box_size_px: float = 0.0,
        nms_iou_threshold: float | None = 0.5,
        half: bool = False,
        name: str = "torchvision",
        cpu_threads: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.cpu_threads = max(1, torch.get_num_threads() // 2) if cpu_threads is None else int(cpu_threads)
        if half and self.device.type != "cuda":
            raise ValueError(f"Half precision needs a CUDA device, got '{self.device}'")
        self.dtype = torch.float16 if half else torch.float32
        self.model = model.eval().to(self.device, self.dtype)
        self.score_threshold = float(score_threshold)
        self.min_box_size_px = float(min_box_size_px)
        self.nms_iou_threshold = nms_iou_threshold
        self.name = name

    def __repr__(self) -> str:
        return (
            f"TorchvisionDetector({self.name}, device={self.device}, dtype={self.dtype}, "
            f"score_threshold={self.score_threshold}, min_box_size_px={self.min_box_size_px})"
        )

    def _to_tensor(self, image_bgr: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 BGR -> (3, H, W) RGB in [0, 1] on the device (converted there, not on the CPU)."""
        tensor = torch.from_numpy(np.ascontiguousarray(image_bgr)).to(self.device, non_blocking=True)
        return tensor.permute(2, 0, 1).flip(0).to(self.dtype).div_(255.0)

    def network_input_size(self, height: int, width: int) -> tuple[int, int] | None:
        """(height, width) the model's own transform resizes an image to, or None if it has none.

        SSD/SSDlite: a fixed size; R-CNN, RetinaNet, FCOS: the shorter side to
        `min_size` unless the longer one would pass `max_size` (torchvision's rule).
        """
        transform = getattr(self.model, "transform", None)
        if transform is None or not hasattr(transform, "min_size"):
            return None
        if getattr(transform, "fixed_size", None) is not None:
            fixed_width, fixed_height = transform.fixed_size
            return int(fixed_height), int(fixed_width)
        scale = min(float(transform.min_size[-1]) / min(height, width), float(transform.max_size) / max(height, width))
        return int(math.floor(height * scale)), int(math.floor(width * scale))

    def _prepare(self, image_bgr: np.ndarray) -> tuple[torch.Tensor, float, float]:
        """The model input for one frame and the (x, y) factors from its pixels back to the frame's.

        On the CPU the frame is first resized, as 8-bit pixels, to the size the
        model's transform would give it (bilinear, as the transform does):
        converting and normalising a 768x576 frame in float only for the model
        to shrink it to 320x320 cost SSDlite about a third of its time.
        """
        height, width = image_bgr.shape[:2]
        size = self.network_input_size(height, width) if self.device.type == "cpu" else None
        if size is None or size == (height, width):
            return self._to_tensor(image_bgr), 1.0, 1.0
        resized = cv2.resize(image_bgr, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        return self._to_tensor(resized), width / size[1], height / size[0]

    @torch.inference_mode()
    def __call__(self, frames: Sequence[Frame]) -> list[Detections]:
        if not frames:
            return []
        prepared = [self._prepare(frame.image) for frame in frames]
        threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(self.cpu_threads)  # this thread only (OpenMP's per-thread setting)
        try:
            outputs = self.model([tensor for tensor, _, _ in prepared])
        finally:
            torch.set_num_threads(threads)
        return [self._filter(output, scale_x, scale_y) for output, (_, scale_x, scale_y) in zip(outputs, prepared)]

    def _filter(self, output: dict[str, torch.Tensor], scale_x: float = 1.0, scale_y: float = 1.0) -> Detections:
        boxes = output["boxes"].float()
        if scale_x != 1.0 or scale_y != 1.0:
            boxes = boxes * boxes.new_tensor([scale_x, scale_y, scale_x, scale_y])
        scores = output["scores"].float()
        keep = (output["labels"] == PERSON_LABEL) & (scores >= self.score_threshold)
        if self.min_box_size_px > 0:
            sizes = boxes[:, 2:] - boxes[:, :2]
            keep &= (sizes >= self.min_box_size_px).all(dim=1)
        boxes, scores = boxes[keep], scores[keep]
        if self.nms_iou_threshold is not None and len(boxes) > 1:
            order = torchvision.ops.nms(boxes, scores, float(self.nms_iou_threshold))
        else:
            order = torch.argsort(scores, descending=True)
        return Detections(boxes[order].cpu().numpy(), scores[order].cpu().numpy())


def build_detector(
    name: str,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    score_threshold: float = 0.5,
    min_box_size_px: float = 0.0,
    half: bool = False,
    offline: bool | None = None,
    nms_iou_threshold: float | None = 0.5,
    input_min_size_px: int | None = None,
    input_max_size_px: int | None = None,
) -> TorchvisionDetector:
    """A ready `TorchvisionDetector` for builder `name` (see `build_torchvision_model` for `weights`).

    `name` "auto" picks fasterrcnn_resnet50_fpn_v2 on CUDA and
    ssdlite320_mobilenet_v3_large on the CPU; "accurate" and "fast" name those two.
    """
    name = resolve_detector_name(name, device)
    # The model's own cut (strict `>`) sits just below ours (`>=`): it drops the
    # boxes we would drop anyway before its per-image box limit (100) applies.
    model_threshold = float(np.nextafter(np.float32(max(float(score_threshold), 0.0)), np.float32(-1.0)))
    model = build_torchvision_model(
        name,
        weights=weights,
        offline=offline,
        score_threshold=max(model_threshold, 0.0),
        input_min_size_px=input_min_size_px,
        input_max_size_px=input_max_size_px,
    )
    return TorchvisionDetector(
        model,
        device=device,
        score_threshold=score_threshold,
        min_box_size_px=min_box_size_px,
        nms_iou_threshold=nms_iou_threshold,
        half=half,
        name=name,
    )


# The defaults, by device. On the CPU a detector must cost no more than a third
# of one HRNet-W32 crop's network time (benchmarks/detectors.py measures both in
# one run): SSDlite320 does (about 20-40 ms a frame against about 110 ms a crop
# on a 2-core CPU), Faster R-CNN MobileNetV3 at 800 px (about 1 s) does not.
# "accurate" names the R-CNN that is the default on CUDA, one flag away on the CPU.
ACCURATE_DEFAULT = "fasterrcnn_resnet50_fpn_v2"
FAST_DEFAULT = "ssdlite320_mobilenet_v3_large"
DETECTOR_PRESETS = {"fast": FAST_DEFAULT, "accurate": ACCURATE_DEFAULT}


def resolve_detector_name(name: str, device: str | torch.device) -> str:
    """Turn "auto" into the accurate default on CUDA and the fast one elsewhere; "fast"/"accurate" into theirs."""
    if name == "auto":
        return ACCURATE_DEFAULT if torch.device(device).type == "cuda" else FAST_DEFAULT
    return DETECTOR_PRESETS.get(name, name)
