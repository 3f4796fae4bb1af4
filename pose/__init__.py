"""HRNet top-down pose estimation: network, pre/post-processing, weights, evaluation.

Public entry points (imported on first use, so ``import pose`` stays cheap and
does not load torch):

- `load_config(path_or_dict_or_name)` -> `pose.config.ExperimentConfig`
- `build_model(config)` -> `pose.hrnet.PoseHighResolutionNet`
- `load_weights(model, path)`: official / training / MMPose 0.x / 1.x checkpoints
- `PoseEstimator`: crops, network, flip test and decoding in one callable
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_LAZY = {
    "load_config": "pose.config",
    "ExperimentConfig": "pose.config",
    "build_model": "pose.hrnet",
    "PoseHighResolutionNet": "pose.hrnet",
    "load_weights": "pose.checkpoints",
    "CheckpointError": "pose.checkpoints",
    "resolve_weights": "pose.weights",
    "PoseEstimator": "pose.estimator",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pose' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
