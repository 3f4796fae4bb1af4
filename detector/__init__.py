"""Person detectors: frames in, person boxes (`pipeline.types.Detections`) out.

Every detector is a callable `detector(frames: list[Frame]) -> list[Detections]`
with boxes as xyxy float32 pixels of each frame:

- `TorchvisionDetector` (via `build_detector`): a torchvision COCO detector,
  one network call per list of frames;
- `FileDetector`: boxes read from a COCO-results detection file;
- `GroundTruthDetector`: annotated boxes, cleaned as the official HRNet test does.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol

from detector.file_detector import FileDetector, ImageIdLookup
from detector.ground_truth import GroundTruthDetector
from pipeline.types import Detections, Frame


class Detector(Protocol):
    """What the pipeline and the evaluators call."""

    def __call__(self, frames: Sequence[Frame]) -> list[Detections]: ...


# The torchvision detector pulls in torch: import it on first use so that
# `main.py track --help` and the file-based detectors stay fast.
_LAZY = {
    name: "detector.torchvision_detector"
    for name in ("DetectorWeightsError", "TorchvisionDetector", "build_detector", "supported_detector_names")
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'detector' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


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
