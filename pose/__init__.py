"""HRNet top-down pose estimation: network, configs, weights, pre/post-processing, runtimes.

Public entry points (imported on first use, so ``import pose`` stays cheap and
does not load torch):

- `load_config(path_or_dict_or_name)` -> `pose.config.ExperimentConfig`
- `build_model(config)` -> `pose.hrnet.PoseHighResolutionNet`
- `load_weights(model, path)`: official / training / MMPose 0.x / 1.x checkpoints
- `PoseEstimator`: crops, network, flip test and decoding in one callable
"""

from __future__ import annotations

from core.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

