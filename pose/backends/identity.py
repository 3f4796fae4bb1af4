"""Names for compiled artifacts: what the network is (weights + config) and what was built from it.

A cached artifact is reused only when everything that shaped it is the same:
the weights' bytes, the network section of the config, the backend, the batch
shape and the library version that built it; any change gives a new folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pose.config import load_config
from pose.weights import get_cache_dir

CACHE_SUBDIR = "backends"


def _config_text(config) -> str:
    """The network-defining part of an experiment (MODEL section), as canonical JSON."""
    experiment = load_config(config)
    return json.dumps(experiment.to_dict().get("MODEL", {}), sort_keys=True, default=str)


def weights_id(weights, config) -> str:
    """16 hex digits naming the network: sha256 of the weights and of the config's MODEL section.

    Args:
        weights: a checkpoint file path, or a torch module (its state dict's
            bytes are hashed; for networks without a file, e.g. seeded ones).
        config: anything `pose.load_config` takes.
    """
    digest = hashlib.sha256()
    if isinstance(weights, (str, os.PathLike)):
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        for name, tensor in weights.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(_config_text(config).encode())
    return digest.hexdigest()[:16]


def artifact_key(weights_id: str, backend: str, batch_shape: tuple[int, ...], **extra) -> str:
    """Folder name for one artifact: backend name + 16 hex digits of everything that shaped it.

    batch_shape: (max_batch, 3, H, W) the artifact was built for.
    extra: anything else it depends on (library version, precision, ...).
    """
    parts = {"weights": weights_id, "backend": backend, "batch_shape": list(batch_shape), **extra}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{backend}-{digest}"


def default_cache_dir() -> Path:
    """Where artifacts go: $HRTRACK_CACHE/backends, else ~/.cache/hrtrack/backends (the weights cache's home)."""
    return get_cache_dir() / CACHE_SUBDIR


def artifact_dir(cache_dir: str | os.PathLike | None, key: str) -> Path:
    """The folder for artifact `key` under `cache_dir` (None: the default), created."""
    folder = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder
