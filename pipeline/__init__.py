"""The threaded pipeline: capture -> detection -> pose -> tracking -> sinks.

    from pipeline import Pipeline
    for result in Pipeline(source, detector=det, estimator=est, tracker=trk).run():
        ...  # result: core.types.FrameResult

`Pipeline` is imported on first use so that `core.types` (imported by
every stage) stays cheap.
"""

from __future__ import annotations

from core.lazy import lazy_exports

_LAZY = {"Pipeline": "pipeline.pipeline", "PipelineError": "pipeline.pipeline"}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
