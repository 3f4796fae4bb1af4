"""The keypoint layout a data set trains with: keypoint names, flip pairs and the half-body split.

Built-in layouts are the official ones (FACTS section 7): COCO upper body =
keypoints 0-10, lower = 11-16; MPII upper = 7-15, lower = 0-6. A COCO-format
data set with its own keypoints takes names from the annotation file's keypoint
category; flip pairs and the upper-body set come from a small YAML, or are
derived from the names ("left_x" <-> "right_x"; keypoints of the lower body are
those whose names mention hip, knee, ankle, foot, heel or toe).

Layout YAML (all keys but `keypoints` optional)::

    keypoints: [head, neck, left_hand, right_hand, ...]   # network output order
    flip_pairs: [[2, 3], ...]                              # 0-based indices
    upper_body: [0, 1, 2, 3]                               # 0-based indices
    skeleton: [[0, 1], ...]                                # 0-based, for drawing
    sigmas: [0.05, ...]                                    # OKS sigmas for validation

OKS sigmas for validating a custom set (`oks_sigmas`): the YAML's `sigmas`
when given; otherwise a keypoint named as a COCO keypoint takes COCO's sigma
and any other keypoint the mean of COCO's 17 (a keypoint of average
COCO difficulty, 0.0669). Give measured sigmas for scores comparable across data sets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from core.skeletons import COCO_KEYPOINT_NAMES, KeypointSet, coco_sigmas, keypoint_set

_LOWER_BODY_WORDS = ("hip", "knee", "ankle", "foot", "heel", "toe", "pelvis")
_OFFICIAL_UPPER_BODY = {
    "coco": tuple(range(0, 11)),
    "posetrack": tuple(range(0, 11)),
    "mpii": tuple(range(7, 16)),
}


@dataclass(frozen=True)
class KeypointLayout:
    """What training needs to know about a keypoint set.

    Attributes:
        names: one name per keypoint, in network output order.
        flip_pairs: (left, right) 0-based index pairs swapped by a horizontal mirror.
        upper_body: indices of the half-body augmentation's upper set (the rest is the lower set).
        skeleton: (a, b) index pairs for drawing.
        sigmas: (J,) OKS sigmas for COCO-style validation, or None.
    """

    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    upper_body: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    sigmas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        count = len(self.names)
        for what, indices in (("flip_pairs", [i for pair in self.flip_pairs for i in pair]),
                              ("upper_body", self.upper_body),
                              ("skeleton", [i for pair in self.skeleton for i in pair])):
            bad = [i for i in indices if not 0 <= i < count]
            if bad:
                raise ValueError(f"keypoint layout: {what} has indices {bad} outside 0..{count - 1}")
        if self.sigmas is not None and len(self.sigmas) != count:
            raise ValueError(f"keypoint layout: {len(self.sigmas)} sigmas for {count} keypoints")

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def lower_body(self) -> tuple[int, ...]:
        upper = set(self.upper_body)
        return tuple(i for i in range(self.num_keypoints) if i not in upper)

    def sigmas_array(self) -> np.ndarray | None:
        return None if self.sigmas is None else np.asarray(self.sigmas, dtype=np.float64)

    def keypoint_set(self, name: str = "custom") -> KeypointSet:
        """The inference-side description (`core.skeletons.KeypointSet`), with `oks_sigmas(self)`."""
        return KeypointSet(name, self.names, self.flip_pairs, self.skeleton, oks_sigmas(self))


def oks_sigmas(layout: KeypointLayout) -> np.ndarray:
    """(J,) float64 OKS sigmas of a layout: its own, else the documented default (module docstring)."""
    if layout.sigmas is not None:
        return layout.sigmas_array()
    coco = dict(zip(COCO_KEYPOINT_NAMES, coco_sigmas()))
    default = float(coco_sigmas().mean())
    return np.array([coco.get(name, default) for name in layout.names], dtype=np.float64)


def builtin_layout(dataset_name: str) -> KeypointLayout:
    """The official layout of "coco", "posetrack" or "mpii"."""
    keypoints = keypoint_set(dataset_name)
    sigmas = None if keypoints.sigmas is None else tuple(float(s) for s in keypoints.sigmas)
    return KeypointLayout(keypoints.keypoint_names, keypoints.flip_pairs, _OFFICIAL_UPPER_BODY[keypoints.name],
                          keypoints.skeleton, sigmas)


def _pairs_from_names(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        match = re.match(r"^(left|l)([_\- ]?)(.*)$", name, flags=re.IGNORECASE)
        if not match:
            continue
        prefix, separator, rest = match.groups()
        right_prefix = ("right" if len(prefix) > 1 else "r")
        right_prefix = right_prefix.upper() if prefix.isupper() else (right_prefix.capitalize() if prefix[0].isupper() else right_prefix)
        other = index.get(f"{right_prefix}{separator}{rest}")
        if other is not None and other != i:
            pairs.append((i, other))
    return tuple(pairs)


def layout_from_names(names: Sequence[str], skeleton: Sequence[Sequence[int]] = (), sigmas=None) -> KeypointLayout:
    """A layout for keypoints known only by name: left/right pairs and lower body derived from the names."""
    names = tuple(str(n) for n in names)
    upper = tuple(i for i, n in enumerate(names) if not any(word in n.lower() for word in _LOWER_BODY_WORDS))
    return KeypointLayout(names, _pairs_from_names(names), upper,
                       tuple(tuple(int(v) for v in pair) for pair in skeleton),
                       None if sigmas is None else tuple(float(s) for s in sigmas))


def layout_from_category(category: dict, source: str = "annotation file") -> KeypointLayout:
    """Layout of a COCO keypoint category (`keypoints` names, 1-based `skeleton` as COCO writes it).

    The official COCO person category gets the official layout (flip pairs, OKS sigmas).
    """
    names = category.get("keypoints")
    if not isinstance(names, list) or not names:
        raise ValueError(f"{source}: category {category.get('name')!r} has no 'keypoints' list")
    coco = builtin_layout("coco")
    if tuple(names) == coco.names:
        return coco
    skeleton = [(int(a) - 1, int(b) - 1) for a, b in category.get("skeleton", [])]
    return layout_from_names(names, skeleton)


def load_layout_yaml(path: str | os.PathLike) -> KeypointLayout:
    """A layout from the small YAML described in the module docstring (errors name the file)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"keypoint layout file {path} does not exist") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("keypoints"), list):
        raise ValueError(f"{path}: needs a 'keypoints' list of keypoint names")
    unknown = sorted(set(raw) - {"keypoints", "flip_pairs", "upper_body", "skeleton", "sigmas"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}")
    derived = layout_from_names(raw["keypoints"], raw.get("skeleton", ()), raw.get("sigmas"))
    try:
        return KeypointLayout(
            derived.names,
            tuple(tuple(int(v) for v in pair) for pair in raw["flip_pairs"]) if "flip_pairs" in raw else derived.flip_pairs,
            tuple(int(v) for v in raw["upper_body"]) if "upper_body" in raw else derived.upper_body,
            derived.skeleton,
            derived.sigmas,
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
