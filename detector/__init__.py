"""Person detectors: frames in, person boxes (`core.types.Detections`) out.

Every detector is a callable `detector(frames: list[Frame]) -> list[Detections]`
with boxes as xyxy float32 pixels of each frame:

- `TorchvisionDetector` (via `build_detector`): a torchvision COCO detector,
  one network call per list of frames;
- `FileDetector`: boxes read from a COCO-results detection file;
- `GroundTruthDetector`: annotated boxes, cleaned as the official HRNet test does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.lazy import lazy_exports
from core.types import Detections, Frame
from detector.file_detector import FileDetector, ImageIdLookup
from detector.ground_truth import GroundTruthDetector


class Detector(Protocol):
    """What the pipeline and the evaluators call."""

    def __call__(self, frames: Sequence[Frame]) -> list[Detections]: ...


# The torchvision detector pulls in torch: import it on first use so that
# `main.py track --help` and the file-based detectors stay fast.
_LAZY = {
    name: "detector.torchvision_detector"
    for name in ("DetectorWeightsError", "TorchvisionDetector", "build_detector", "supported_detector_names")
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "Detector",
    "DetectorWeightsError",
    "FileDetector",
    "GroundTruthDetector",
    "ImageIdLookup",
    "TorchvisionDetector",
    "build_detector",
    "supported_detector_names",
]
