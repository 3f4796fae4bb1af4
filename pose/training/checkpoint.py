"""Training state and weights on disk.

Files a run writes (only rank 0), next to each other in the output folder:

| file | content | loads with |
| --- | --- | --- |
| `checkpoint.pth` | after every epoch: `{'epoch', 'model', 'state_dict', 'optimizer', 'scheduler', 'scaler', 'perf', 'best_perf', 'rng', 'history', 'config'}` (the official `checkpoint.pth` keys plus what an exact resume needs) | `load_training_state`; `pose.load_weights` (its `state_dict`) |
| `model_best.pth` | flat official-name state dict of the best validation epoch | `pose.load_weights`, official `tools/test.py` |
| `final_state.pth` | flat official-name state dict after the last epoch | the same |

Everything is saved as plain tensors, numbers, strings, lists and dicts, so
`torch.load(weights_only=True)` reads every file (no pickled code), and each
file is written under a `.part` name and renamed when complete.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.io import atomic_output


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` via a `.part` file and a rename (a file under its final name is always whole)."""
    path = Path(path)
    with atomic_output(path) as part:
        torch.save(obj, part)
    return path


def flat_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict under the official flat names (no DDP `module.` prefix), on the CPU."""
    model = getattr(model, "module", model)
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def save_weights(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Flat official-name weights (what `pose.load_weights` and the official test script load)."""
    return save_atomic(flat_state_dict(model), path)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states as weights_only-loadable values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    random.setstate(_to_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value):
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value):
    return tuple(_to_tuples(v) for v in value) if isinstance(value, (tuple, list)) else value


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a `checkpoint.pth` written by the trainer (errors name the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - the unpickler raises anything on a damaged file
        raise ValueError(f"{path}: not a readable training checkpoint ({type(error).__name__}: {error})") from None
    missing = [key for key in ("epoch", "state_dict", "optimizer", "scheduler", "rng") if key not in state]
    if missing:
        raise ValueError(f"{path}: not a training checkpoint of this tool (missing {', '.join(missing)}); "
                         "to start from plain weights use --init")
    return state
