"""Load HRNet checkpoints strictly, whatever tool saved them.

Accepted containers and key layouts:

| source | container | keys |
| --- | --- | --- |
| official model zoo ``pose_hrnet_*.pth`` | plain state_dict | ``conv1.weight`` ... ``final_layer.bias`` |
| official training ``checkpoint.pth`` | ``{'state_dict': ...}`` | ``module.`` + official name |
| MMPose 0.x | ``{'state_dict': ..., 'meta': ...}`` | ``backbone.*``, ``keypoint_head.final_layer.*`` |
| MMPose 1.x | ``{'state_dict': ..., 'meta': ...}`` | ``backbone.*``, ``head.final_layer.*`` |

Files are read with ``torch.load(weights_only=True)`` on the CPU (no arbitrary
pickled code runs). A missing ``num_batches_tracked`` is filled with 0 (it is
unused at inference); every other difference from the model (missing key,
unexpected key, different shape) is a `CheckpointError` that names the file and
lists the offending keys. Nothing is skipped silently.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from core.state_dicts import describe_keys

logger = logging.getLogger(__name__)

# Key prefix rewrites, applied in this order (after stripping DataParallel's "module.").
_HEAD_PREFIXES = {
    "keypoint_head.final_layer.": "final_layer.",  # MMPose 0.x TopdownHeatmapSimpleHead
    "head.final_layer.": "final_layer.",  # MMPose 1.x HeatmapHead
}
# MMPose 1.x data preprocessor buffers: the same ImageNet normalisation on 0..255 RGB.
_PREPROCESSOR_VALUES = {
    "data_preprocessor.mean": (123.675, 116.28, 103.53),
    "data_preprocessor.std": (58.395, 57.12, 57.375),
}
_LIST_LIMIT = 5  # keys shown per category in error messages


class CheckpointError(ValueError):
    """A weights file that cannot be loaded into the model: not a torch file,
    truncated, or made for a different architecture. The message names the file."""


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _first_line(error: BaseException) -> str:
    """`Type: first line of the message`, without terminal colour codes."""
    text = _ANSI_ESCAPE.sub("", str(error)).strip()
    detail = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def _looks_like_torch_file(head: bytes) -> bool:
    """Whether the first bytes of a file are those of something `torch.save` writes.

    A zip archive (torch >= 1.6), a pickle (legacy files start with the
    protocol opcode 0x80) or a tar archive (the oldest format, "ustar" at 257).
    """
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80" or head[257:262] == b"ustar"


def _read_torch_file(path: Path) -> object:
    if path.is_dir():
        raise IsADirectoryError(f"weights file {str(path)!r} is a folder, not a weights file")
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    with path.open("rb") as stream:
        head = stream.read(512)
    if not head:
        raise CheckpointError(f"{path}: not a weights file (empty file)")
    if not _looks_like_torch_file(head):
        # torch's unpickler would take the bytes for a pickle with unknown objects: the
        # "would run code" refusal below, which sends the user looking for code that is not there.
        raise CheckpointError(f"{path}: not a weights file (neither a PyTorch zip archive nor a pickle; "
                              f"first bytes {head[:8].hex(' ')})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # permissions, I/O errors: already name the file
    except pickle.UnpicklingError as error:
        # torch's own message advises weights_only=False, which would run code stored in
        # a file from elsewhere: we never pass that advice on.
        if "weights only" in _ANSI_ESCAPE.sub("", str(error)).lower():
            raise CheckpointError(
                f"{path}: holds Python objects besides tensors; it is refused because loading it would run "
                "code stored in the file. Save a plain state dict (torch.save(model.state_dict(), path))."
            ) from None
        raise CheckpointError(f"{path}: not a readable PyTorch weights file (corrupt or truncated): "
                              f"{_first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - the unpickler raises anything (IndexError, KeyError, ...) on garbage
        raise CheckpointError(
            f"{path}: not a readable PyTorch weights file (corrupt, truncated, or not saved with torch.save "
            f"as plain tensors): {_first_line(error)}"
        ) from None


def _unwrap(obj: object, path: Path) -> Mapping[str, torch.Tensor]:
    """The tensor mapping inside a checkpoint container."""
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: expected a state dict (a mapping of tensors), got {type(obj).__name__}")
    not_tensors = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{path}: expected a state dict of tensors, but {len(not_tensors)} entries are not tensors "
            f"(first: {', '.join(not_tensors[:_LIST_LIMIT])})"
        )
    return obj


def _official_name(key: str) -> str:
    if key.startswith("module."):
        key = key[len("module."):]
    if key.startswith("backbone."):
        return key[len("backbone."):]
    for prefix, replacement in _HEAD_PREFIXES.items():
        if key.startswith(prefix):
            return replacement + key[len(prefix):]
    return key


def _check_preprocessor(key: str, value: torch.Tensor, path: Path) -> None:
    expected = torch.tensor(_PREPROCESSOR_VALUES[key], dtype=torch.float64)
    actual = value.detach().to(torch.float64).flatten()
    if actual.shape != expected.shape or not torch.allclose(actual, expected, atol=1e-3):
        raise CheckpointError(
            f"{path}: {key} is {actual.tolist()}, but this network expects the ImageNet "
            f"normalisation {list(_PREPROCESSOR_VALUES[key])} (0..255 RGB)"
        )


def normalize_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | Path = "<state dict>") -> dict[str, torch.Tensor]:
    """Rename official / training / MMPose 0.x / 1.x keys to the official flat names.

    MMPose 1.x normalisation buffers are checked against the ImageNet values and
    dropped; every other key is kept (unknown ones are reported by `load_weights`).
    Raises CheckpointError when two keys map to the same name.
    """
    path = Path(path)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        name = _official_name(str(key))
        if name in _PREPROCESSOR_VALUES:
            _check_preprocessor(name, value, path)
            continue
        if name in out:
            raise CheckpointError(f"{path}: keys map to the same official name {name!r} (mixed key layouts?)")
        out[name] = value
    return out


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return its tensors under the official key names."""
    path = Path(path)
    return normalize_state_dict(_unwrap(_read_torch_file(path), path), path)


def infer_width_and_keypoints(state_dict: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(HRNet width C1, number of keypoints) of an official-name state dict, e.g.
    (32, 17) for COCO W32 and (48, 16) for MPII W48."""
    try:
        width = int(state_dict["transition1.0.0.weight"].shape[0])
        keypoints = int(state_dict["final_layer.weight"].shape[0])
    except KeyError as error:
        raise CheckpointError(f"state dict has no {error.args[0]!r}: not an HRNet pose checkpoint") from None
    return width, keypoints


def _describe(keys: list[str], what: str) -> str:
    return describe_keys(keys, what, _LIST_LIMIT)


def _architecture_hint(found: Mapping[str, torch.Tensor], model: nn.Module) -> str:
    try:
        width, keypoints = infer_width_and_keypoints(found)
        model_width, model_keypoints = infer_width_and_keypoints(model.state_dict())
    except CheckpointError:
        return ""
    return (
        f" The file looks like HRNet-W{width} with {keypoints} keypoints; the model is HRNet-W{model_width} "
        f"with {model_keypoints} keypoints: use the experiment config that matches the file."
    )


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], path: str | Path = "<state dict>") -> None:
    """Copy an official-name state dict into `model`, strictly (see module docstring)."""
    path = Path(path)
    expected = model.state_dict()
    found = dict(state_dict)
    for key, value in expected.items():
        if key not in found and key.endswith("num_batches_tracked"):
            found[key] = torch.zeros_like(value)
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [
        f"{k}: file {list(found[k].shape)} vs model {list(expected[k].shape)}"
        for k in expected
        if k in found and found[k].shape != expected[k].shape
    ]
    wrong_dtype = [
        f"{k}: file {found[k].dtype} vs model {expected[k].dtype}"
        for k in expected
        if k in found and found[k].is_floating_point() != expected[k].is_floating_point()
    ]
    if missing or unexpected or mismatched or wrong_dtype:
        problems = [
            _describe(keys, what)
            for keys, what in (
                (missing, "missing keys"),
                (unexpected, "unexpected keys"),
                (mismatched, "shape mismatches"),
                (wrong_dtype, "dtype mismatches"),
            )
            if keys
        ]
        raise CheckpointError(
            f"{path}: does not fit {type(model).__name__}: " + "; ".join(problems) + "." + _architecture_hint(found, model)
        )
    converted = [k for k in expected if found[k].dtype != expected[k].dtype]
    if converted:
        logger.debug("%s: converting %d tensors to the model dtype (first: %s)", path, len(converted), converted[0])
    model.load_state_dict(found, strict=True)


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load an official, official-training, MMPose 0.x or MMPose 1.x HRNet
    checkpoint into `model` in place, strictly.

    Raises FileNotFoundError if `path` does not exist and CheckpointError (a
    ValueError) naming the file for unreadable files and architecture mismatches.
    """
    path = Path(path)
    load_state_dict_strict(model, read_state_dict(path), path)
    logger.info("loaded weights from %s", path)
