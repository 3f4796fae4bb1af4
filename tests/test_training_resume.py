"""A run stopped half-way and continued with `main.py train --resume` ends exactly where an unbroken run ends."""

from __future__ import annotations

import pytest

import main as entry
from tests.training_runs import SMALL_CONFIG, synthetic_set, torch_threads, train_command

EPOCHS, STOP = 4, 2
# lr x 0.1 from epoch index 2 (the scheduler is stepped at the start of each epoch, officially):
# the first epoch after the stop, so a scheduler that did not resume would show in the weights.
SCHEDULE = ("TRAIN.LR_STEP", "[3]", "TRAIN.BATCH_SIZE_PER_GPU", "8")


def _assert_same(a, b, where="checkpoint"):
    """Exact equality of nested dicts/lists/tuples of tensors and plain values."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a, key=str) == sorted(b, key=str), (where, sorted(a, key=str), sorted(b, key=str))
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{index}]")
    else:
        assert a == b or (a != a and b != b), (where, a, b)  # NaN == NaN for 'perf' of unvalidated epochs


@pytest.mark.slow
def test_resume_gives_the_weights_and_state_of_an_unbroken_run(tmp_path):
    """4 epochs in one go vs 2 epochs, stop, `--resume checkpoint.pth` to 4, validating every epoch.

    Exact on the CPU (same thread count, deterministic kernels): the data order is
    the sampler's permutation of (seed, epoch), each sample's augmentation a
    generator of (seed, epoch, index), and the checkpoint carries model, Adam
    moments, scheduler, epoch, best AP and the Python/numpy/torch generator states.
    """
    import torch

    data = synthetic_set(tmp_path / "data", 40, 16)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    with torch_threads(1):
        assert entry.main(train_command(SMALL_CONFIG, data, whole, EPOCHS, overrides=SCHEDULE)) == 0
        assert entry.main(train_command(SMALL_CONFIG, data, broken, STOP, overrides=SCHEDULE)) == 0
        halfway = torch.load(broken / "checkpoint.pth", weights_only=True)
        assert halfway["epoch"] == STOP
        assert entry.main(train_command(SMALL_CONFIG, data, broken, EPOCHS, overrides=SCHEDULE,
                                        flags=("--resume", str(broken / "checkpoint.pth")))) == 0

    a = torch.load(whole / "checkpoint.pth", weights_only=True)
    b = torch.load(broken / "checkpoint.pth", weights_only=True)
    assert a["epoch"] == b["epoch"] == EPOCHS
    assert a["scheduler"]["last_epoch"] == EPOCHS and a["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    # The uninterrupted run moved the weights after the stop (else the comparison below proves nothing).
    assert any(not torch.equal(a["state_dict"][k], halfway["state_dict"][k]) for k in a["state_dict"])
    for key in ("state_dict", "optimizer", "scheduler", "scaler", "perf", "best_perf", "rng", "config"):
        _assert_same(a[key], b[key], key)
    # The per-epoch log is the same but for the measured speed.
    strip = [{k: v for k, v in row.items() if k != "images_per_s"} for row in a["history"]]
    _assert_same(strip, [{k: v for k, v in row.items() if k != "images_per_s"} for row in b["history"]], "history")
    assert [row["epoch"] for row in a["history"]] == list(range(EPOCHS))
    for name in ("final_state.pth", "model_best.pth"):
        _assert_same(torch.load(whole / name, weights_only=True), torch.load(broken / name, weights_only=True), name)
    assert (broken / "log.csv").read_text().count("\n") == EPOCHS + 1
