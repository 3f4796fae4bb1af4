"""Paths to the shared test fixtures, and the command-line flags of the seeded tiny model."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"
SAMPLE_VIDEO = DATA / "posetrack18_mini" / "videos" / "000001_mpiinew_test" / "000001_mpiinew_test.mp4"
TINY_CONFIG = DATA / "hrnet_reference" / "dev_tiny.yaml"
TINY_WEIGHTS = DATA / "hrnet_reference" / "dev_tiny_state_dict.pt"
# The tiny seeded HRNet on the CPU, no flip test, no progress bars: the model flags of CLI tests.
TINY_MODEL_ARGS = [
    "--pose-config", str(TINY_CONFIG),
    "--pose-weights", str(TINY_WEIGHTS),
    "--device", "cpu", "--no-flip", "--no-progress",
]
