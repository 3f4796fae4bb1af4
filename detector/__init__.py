"""Person detectors: frames in, person boxes (`pipeline.types.Detections`) out.

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

from detector.file_detector import FileDetector, ImageIdLookup
from detector.ground_truth import GroundTruthDetector
from detector.torchvision_detector import (
    DetectorWeightsError,
    TorchvisionDetector,
    build_detector,
    supported_detector_names,
)
from pipeline.types import Detections, Frame


class Detector(Protocol):
    """What the pipeline and the evaluators call."""

    def __call__(self, frames: Sequence[Frame]) -> list[Detections]: ...


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
