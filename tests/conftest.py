"""Shared pytest setup: offscreen Qt, fixture paths, small thread counts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Qt must never try to open a display in tests.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never download: a named model that is not cached must fail fast.
os.environ.setdefault("HRTRACK_OFFLINE", "1")
# Commands under test run the pose network eagerly (the reference): `--backend auto`, the
# users' default, would compile every candidate backend for each test model on first use.
os.environ.setdefault("HRTRACK_BACKEND", "torch")

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: copied fixtures (see tests/data/README.md)."""
    return DATA_DIR


@pytest.fixture
def posetrack_root_with_a_broken_video(data_dir, tmp_path) -> Path:
    """A writable copy of the PoseTrack18 mini val split whose video 009473_mpii_test lacks its first frame."""
    source = data_dir / "posetrack18_mini"
    root = tmp_path / "posetrack"
    shutil.copytree(source / "annotations" / "val", root / "annotations" / "val")
    shutil.copytree(source / "images", root / "images")
    (root / "images" / "val" / "009473_mpii_test" / "000000.jpg").unlink()
    return root


@pytest.fixture(scope="session")
def hrnet_reference_dir() -> Path:
    """Reference arrays produced by running the official HRNet code."""
    return DATA_DIR / "hrnet_reference"
