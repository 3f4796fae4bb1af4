"""The benchmarks that must not rot before their hardware is at hand run here in their rehearsal modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _run(script: str, *arguments: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def test_gpu_check_dry_run_measures_every_row_and_writes_one_json(tmp_path):
    out = tmp_path / "gpu.json"
    completed = _run("gpu_check.py", "--dry-run", "--json", str(out))
    assert completed.returncode == 0, completed.stderr
    report = json.loads(out.read_text())
    assert report["dry_run"] is True
    measured = {(row["precision"], row["batch"]) for row in report["pose"] if "skipped" not in row}
    assert measured == {("fp32", 1), ("fp32", 2), ("compile", 1), ("compile", 2)}
    assert [row["skipped"] for row in report["pose"] if "skipped" in row] == ["fp16 needs a CUDA device"]
    assert all(row["crops_per_s"] > 0 for row in report["pose"] if "skipped" not in row)
    assert [row["people"] for row in report["end_to_end"]] == report["plan"]["people"]
    assert all(row["fps"] > 0 and row["frames"] == report["plan"]["frames"] for row in report["end_to_end"])


def test_gpu_check_without_cuda_says_to_dry_run(tmp_path):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the real check would run")
    completed = _run("gpu_check.py", "--json", str(tmp_path / "gpu.json"))
    assert completed.returncode == 2 and "--dry-run" in completed.stderr
