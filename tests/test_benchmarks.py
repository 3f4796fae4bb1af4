"""The benchmarks that must not rot before their hardware is at hand run here in their rehearsal modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _run(script: str, *arguments: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.slow  # about 35 CPU-seconds: every row of the check, dry
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


@pytest.mark.slow
def test_backends_benchmark_reports_speed_ceiling_ap_and_oks(tmp_path):
    out = tmp_path / "backends.json"
    completed = _run("backends.py", "--config", "tests/data/hrnet_reference/dev_tiny.yaml", "--backends", "torch", "fp16",
                     "--batches", "1", "2", "--repeats", "1", "--warmup", "0", "--json", str(out))
    assert completed.returncode == 0, completed.stderr
    report = json.loads(out.read_text())
    assert report["ceiling_gflops"]["before"] > 0 and report["ceiling_gflops"]["after"] > 0
    assert report["gflop_per_crop"] > 0
    eager = [row for row in report["speed"] if row["backend"] == "torch"]
    assert [row["batch"] for row in eager] == [1, 2]
    for row in eager:
        assert row["crops_per_s"] > 0 and row["ratio_to_eager"] == 1.0
        assert 0 < row["fraction_of_ceiling"] and row["first_start_s"] >= 0 and row["second_start_s"] >= 0
    refused = [row for row in report["speed"] if row["backend"] == "fp16"]
    assert len(refused) == 1 and not refused[0]["available"] and "CUDA" in refused[0]["reason"]
    rows = {row["backend"]: row for row in report["accuracy"]["rows"]}
    assert report["accuracy"]["weights"].endswith("tests/data/trained/synthetic_w16_64x48.pth")
    # eager against itself: the reference; AP of the trained network on its own validation set (43.5 when made)
    assert rows["torch"]["oks_mean"] == 1.0 and rows["torch"]["ap_loss"] == 0.0 and rows["torch"]["ap"] > 40
    assert rows["torch"]["people"] == 32  # the synthetic reference figures
    assert not rows["fp16"]["available"]
    assert "AP lost" in completed.stdout and "OKS" in completed.stdout


@pytest.mark.slow
def test_train_step_measures_a_small_config_and_writes_its_json(tmp_path):
    out = tmp_path / "train_step.json"
    config = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.yaml"
    completed = _run("train_step.py", "--config", str(config), "--device", "cpu", "--batch", "2", "--steps", "2",
                     "--warmup", "1", "--threads", "1", "--json", str(out))
    assert completed.returncode == 0, completed.stderr
    report = json.loads(out.read_text())
    assert {"config", "device", "amp", "batch", "input_size", "warmup_steps", "steps", "step_s", "median_step_s",
            "images_per_s", "torch", "cpu_threads"} <= set(report)
    assert (report["device"], report["amp"], report["batch"], report["input_size"]) == ("cpu", False, 2, [48, 64])
    assert report["cpu_threads"] == 1 and len(report["step_s"]) == report["steps"] == 2
    assert all(seconds > 0 for seconds in report["step_s"])
    assert report["images_per_s"] == 2 / report["median_step_s"]
    assert "images/s" in completed.stdout


def test_train_step_refuses_mixed_precision_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    config = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.yaml"
    completed = _run("train_step.py", "--config", str(config), "--device", "cpu", "--amp", "--json", str(tmp_path / "t.json"))
    assert completed.returncode != 0 and "--amp needs a CUDA device" in completed.stderr
    assert not (tmp_path / "t.json").exists()


@pytest.mark.slow  # builds the detector and exports the tiny network to ONNX
def test_end_to_end_gives_one_curve_per_backend(tmp_path):
    from tests.sample_data import SAMPLE_VIDEO, TINY_CONFIG

    out = tmp_path / "e2e.json"
    result = _run("end_to_end.py", str(SAMPLE_VIDEO), "--frames", "2", "--people", "1", "2", "--detect-every", "1",
                  "--pose-config", str(TINY_CONFIG), "--backends", "torch", "onnxruntime",
                  "--cache-dir", str(tmp_path / "cache"), "--json", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["backends"] == ["torch", "onnxruntime"]
    assert [(row["backend"], row["people"]) for row in report["rows"]] == [
        ("torch", 1), ("onnxruntime", 1), ("torch", 2), ("onnxruntime", 2)]
    assert all(row["fps"] > 0 for row in report["rows"])


@pytest.mark.slow
def test_backend_gate_benchmark_checks_the_gate_against_ap_and_draws_it(tmp_path):
    out, picture = tmp_path / "gate.json", tmp_path / "gate.png"
    completed = _run("backend_gate.py", "--quick", "--json", str(out), "--plot", str(picture))
    assert completed.returncode == 0, completed.stderr
    report = json.loads(out.read_text())
    rows = {row["backend"]: row for row in report["rows"]}
    assert rows["torch"]["ap_loss"] == 0.0 and rows["onnxruntime"]["oks_mean"] > 0.999
    assert report["gate_holds"] and report["min_oks_losing_at_most_half_ap"] >= report["oks_min"]
    assert picture.stat().st_size > 10_000


@pytest.mark.slow  # three child processes that import scipy
def test_posetrack21_benchmark_scores_a_generated_set_without_the_kit(tmp_path):
    result = _run("posetrack21_eval.py", "--sequences", "2", "--frames", "6", "--people", "2", "--keep", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| ours |" in result.stdout and "| ours, first 1 sequences |" in result.stdout
    assert sorted(p.name for p in (tmp_path / "gt").glob("*.json")) == ["000000_mpii_test.json", "000001_mpii_test.json"]
