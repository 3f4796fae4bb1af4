"""The two rules every model-loading stage shares: which device, and whether downloads are allowed."""

from __future__ import annotations

import os

OFFLINE_ENV = "HRTRACK_OFFLINE"


def is_offline(offline: bool | None = None) -> bool:
    """`offline` if given, else the HRTRACK_OFFLINE environment variable."""
    if offline is not None:
        return bool(offline)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def resolve_device(device: str | None) -> str:
    """None or "auto" -> "cuda" when available, else "cpu"; anything else unchanged."""
    if device in (None, "auto"):
        import torch  # noqa: PLC0415 -- torch only when a model is built, so `--help` stays fast

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
