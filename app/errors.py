"""Messages for the person in front of the window: what failed, and what to try.

Errors are recognised by their types, taken from the layer that raises them
(`pipeline.capture` for sources, `pose.weights` and `detector` for weights,
torch for GPU memory), never by the text of a class name. The run's errors
arrive wrapped in `pipeline.PipelineError`; its `error` is the cause.
"""

from __future__ import annotations

import sys

from pipeline.capture import SourceError, SourceTimeout
from pipeline.pipeline import PipelineError
from pose.weights import WeightsUnavailableError


def _cause(error: BaseException) -> BaseException:
    return error.error if isinstance(error, PipelineError) else error


def is_out_of_memory(error: BaseException) -> bool:
    """True for torch's out-of-memory error (CUDA or another accelerator)."""
    # torch is loaded whenever a model ran; without it no torch error can exist.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(_cause(error), torch.OutOfMemoryError)


def explain_run_error(source: str, error: BaseException) -> str:
    """The message for an error that stopped the video `source`."""
    cause = _cause(error)
    text = str(cause) or type(cause).__name__
    if is_out_of_memory(cause):
        return f"The GPU ran out of memory ({text}). Choose a smaller model or run with --device cpu."
    if isinstance(cause, (FileNotFoundError, SourceError, SourceTimeout)):
        name = f"camera {source}" if source.isdigit() else source
        # The capture's messages already name the source.
        return text if name in text else f"Cannot read {name}: {text}"
    return f"Stopped on {source}: {text}"


def explain_load_error(error: BaseException) -> str:
    """The message for an error while building the models."""
    from detector import DetectorWeightsError  # noqa: PLC0415 - a lazy export that loads torch, as the failed build did already

    text = str(error) or type(error).__name__
    if is_out_of_memory(error):
        return f"Not enough GPU memory to load the model ({text}). Try a smaller model or --device cpu."
    if isinstance(error, DetectorWeightsError):
        return (f"Could not load the person detector: {text} Choose another detector or a detection file "
                f"in the Model tab.")
    if isinstance(error, WeightsUnavailableError):
        return f"Pose weights unavailable: {text}"
    if isinstance(error, FileNotFoundError):
        return f"Model weights or config not found: {text}"
    return f"Could not load the model: {text}"
