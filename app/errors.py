"""Messages for the person in front of the window: what failed, and what to try.

Errors are recognised by their types, taken from the layer that raises them
(`pipeline.capture` for sources, `pose.weights` and `detector` for weights,
torch for GPU memory), never by the text of a class name. The run's errors
arrive wrapped in `pipeline.PipelineError`; its `error` is the cause.

A message is the hint first: what to do, in a sentence or two. When the
error has more to say (a list of checkpoint keys, a download URL), that
follows after a blank line (`DETAILS_SEPARATOR`); the window shows it on
request (`split_message`).
"""

from __future__ import annotations

import sys

from pipeline.capture import SourceError, SourceTimeout
from pipeline.pipeline import PipelineError
from pose.weights import WeightsUnavailableError

DETAILS_SEPARATOR = "\n\n"
# A message longer than this without its own summary is shortened in the banner (at a word).
_SUMMARY_CHARS = 240


def full_stop(text: str) -> str:
    """`text` ending as a sentence does."""
    text = text.rstrip()
    return text if not text or text.endswith((".", "!", "?", ":", "…")) else text + "."


def split_message(message: str) -> tuple[str, str]:
    """(summary, details) of a message: the part before `DETAILS_SEPARATOR`, or a long one cut at a word.

    The details are "" when the summary says everything.
    """
    summary, _, details = message.partition(DETAILS_SEPARATOR)
    if details or len(summary) <= _SUMMARY_CHARS:
        return summary, details
    cut = summary.rfind(" ", 0, _SUMMARY_CHARS)
    return summary[:cut if cut > 0 else _SUMMARY_CHARS].rstrip(" ,;:") + " …", message


def with_details(summary: str, details: str) -> str:
    return full_stop(summary) + (DETAILS_SEPARATOR + details if details else "")


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
    """The message for an error while building the models: what to do first, the error's own text as details."""
    from detector import DetectorWeightsError  # noqa: PLC0415 - a lazy export that loads torch, as the failed build did already
    from pose.checkpoints import CheckpointError  # noqa: PLC0415 - imports torch, loaded by the failed build already

    text = str(error) or type(error).__name__
    if is_out_of_memory(error):
        return f"Not enough GPU memory to load the model ({text}). Try a smaller model or --device cpu."
    if isinstance(error, DetectorWeightsError):
        # The command line's advice, in the window's words.
        text = text.replace("pass a local state dict with --det-weights PATH",
                            "choose a local state dict under Detector weights in the Model tab")
        return with_details("Could not load the person detector's weights. Choose another detector, a detection "
                            "file, or local weights (Detector weights) in the Model tab", text)
    if isinstance(error, CheckpointError) and "does not fit" in text:
        hint = text[text.index(" The file looks like"):].strip() if " The file looks like" in text else ""
        return with_details(f"The pose weights do not fit the config. {hint or 'Choose the config that goes with the weights (or leave Config empty for a registry name).'}", text)
    if isinstance(error, WeightsUnavailableError):
        return with_details("Pose weights unavailable", text)
    if isinstance(error, FileNotFoundError):
        return full_stop(f"Model weights or config not found: {text}")
    return full_stop(f"Could not load the model: {text}")
