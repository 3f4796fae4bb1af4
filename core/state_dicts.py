"""Short descriptions of how a weights file differs from a model (shared by the pose and detector loaders).

A detector state dict has hundreds of keys; listing them all in an error gave
14.7 KB of text. These helpers give counts and the first few keys of each kind.
Shapes are plain tuples, so this module needs no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

KEYS_SHOWN = 5  # keys listed per kind of difference


def describe_keys(keys: Sequence[str], what: str, limit: int = KEYS_SHOWN) -> str:
    """"12 missing keys (a, b, c, d, e, ... (7 more))"."""
    shown = ", ".join(keys[:limit])
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return f"{len(keys)} {what} ({shown}{more})"


def state_dict_differences(expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]],
                           limit: int = KEYS_SHOWN) -> list[str]:
    """Missing keys, unexpected keys and shape mismatches between two {key: shape} maps, summarised.

    Returns one short phrase per kind of difference (empty when the maps agree).
    """
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    mismatched = [f"{key}: file {list(found[key])} vs model {list(shape)}"
                  for key, shape in expected.items() if key in found and tuple(found[key]) != tuple(shape)]
    return [describe_keys(keys, what, limit) for keys, what in
            ((missing, "missing keys"), (unexpected, "unexpected keys"), (mismatched, "shape mismatches")) if keys]
