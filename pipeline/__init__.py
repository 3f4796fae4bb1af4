"""The threaded pipeline: capture -> detection -> pose -> tracking -> sinks.

    from pipeline import Pipeline
    for result in Pipeline(source, detector=det, estimator=est, tracker=trk).run():
        ...  # result: pipeline.types.FrameResult

`Pipeline` is imported on first use so that `pipeline.types` (imported by
every stage) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"Pipeline": "pipeline.pipeline", "PipelineError": "pipeline.pipeline"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
