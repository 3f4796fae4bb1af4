"""One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) for keypoint coordinates.

Vectorised over any number of tracks and keypoints: the state lives in arrays
that the tracker keeps per track, and `one_euro_step` advances a subset of them.
A low cutoff removes jitter when a joint is still; the cutoff rises with speed
(`beta`) so fast motion is not lagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _alpha(cutoff_hz: np.ndarray, dt_s: np.ndarray) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


@dataclass(frozen=True)
class OneEuroParameters:
    """min_cutoff_hz: cutoff at rest; beta: cutoff increase per px/s of speed;
    derivative_cutoff_hz: cutoff of the speed estimate."""

    min_cutoff_hz: float = 1.0
    beta: float = 0.007
    derivative_cutoff_hz: float = 1.0

    def __post_init__(self) -> None:
        if self.min_cutoff_hz <= 0 or self.derivative_cutoff_hz <= 0 or self.beta < 0:
            raise ValueError(f"One-Euro parameters must have positive cutoffs and beta >= 0, got {self}")


def one_euro_step(
    value: np.ndarray,
    previous_value: np.ndarray,
    previous_derivative: np.ndarray,
    dt_s: np.ndarray,
    parameters: OneEuroParameters,
) -> tuple[np.ndarray, np.ndarray]:
    """One filter step.

    Args:
        value: (M, ...) new raw coordinates (px).
        previous_value: (M, ...) last filtered coordinates (px).
        previous_derivative: (M, ...) last filtered speed (px/s).
        dt_s: (M,) seconds since the previous step, > 0.
        parameters: filter constants.

    Returns:
        filtered value and filtered derivative, shapes as `value`.
    """
    dt = np.asarray(dt_s, np.float32).reshape((-1,) + (1,) * (value.ndim - 1))
    derivative = (value - previous_value) / dt
    alpha_d = _alpha(np.float32(parameters.derivative_cutoff_hz), dt)
    derivative = previous_derivative + alpha_d * (derivative - previous_derivative)
    cutoff = parameters.min_cutoff_hz + parameters.beta * np.abs(derivative)
    alpha = _alpha(cutoff, dt)
    filtered = previous_value + alpha * (value - previous_value)
    return filtered.astype(np.float32), derivative.astype(np.float32)


class OneEuroFilter:
    """Convenience single-signal wrapper: `filter(value, dt_s) -> filtered` (same shape)."""

    def __init__(self, parameters: OneEuroParameters | None = None) -> None:
        self.parameters = parameters or OneEuroParameters()
        self._value: np.ndarray | None = None
        self._derivative: np.ndarray | None = None

    def __call__(self, value: np.ndarray, dt_s: float) -> np.ndarray:
        value = np.asarray(value, np.float32)
        if self._value is None:
            self._value = value.copy()
            self._derivative = np.zeros_like(value)
            return self._value.copy()
        filtered, derivative = one_euro_step(
            value[None], self._value[None], self._derivative[None], np.array([dt_s], np.float32), self.parameters
        )
        self._value, self._derivative = filtered[0], derivative[0]
        return self._value.copy()


def smooth_tracks(table, rows: np.ndarray, gap: np.ndarray, camera_offset: np.ndarray,
                  parameters: OneEuroParameters, fps: float) -> None:
    """Advance the One-Euro filters of the updated tracks of a `tracks.TrackTable`.

    rows: (M,) updated rows; gap: (M,) frames since each one's previous
    observation. The filter runs on camera-compensated coordinates (the
    keypoints minus the (2,) px camera offset): it removes the detector's
    jitter but follows camera shake and pans without lag. A track on its
    first detection starts at its raw pose.
    """
    compensated = table.keypoints[rows, :, :2] - camera_offset
    if len(rows) == 0:
        table.smooth_value[rows] = compensated
        return
    fresh = (table.hits[rows] <= 1) & (table.propagated[rows] == 0)
    value, derivative = one_euro_step(
        compensated, table.smooth_value[rows], table.smooth_derivative[rows],
        gap.astype(np.float32) / np.float32(fps), parameters)
    value[fresh] = compensated[fresh]
    derivative[fresh] = 0.0
    table.smooth_value[rows] = value
    table.smooth_derivative[rows] = derivative
