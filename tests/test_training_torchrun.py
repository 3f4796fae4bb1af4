"""`torchrun --nproc_per_node 2 main.py train` on the CPU (gloo): the weights of one process with the
same global batch, and only rank 0 writes files."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings

import pytest

from tests.training_runs import ROOT, SMALL_CONFIG, synthetic_set, torch_threads, train_command

EPOCHS, PER_RANK_BATCH, RANKS, TRAIN_IMAGES = 2, 4, 2, 24
# Largest allowed difference of any weight or BN statistic from the one-process reference.
# The two differ only in float rounding: DDP averages the ranks' gradients by an all-reduce
# (sum, then / world size), the reference gets the same mean from autograd's accumulation of
# 1/2 x each half's loss, so the gradients agree to float32 rounding (~1e-7 relative) and
# Adam carries that into updates; the weights move about 1e-2 over the run. Measured here: 0
# (the halves' gradients are summed in the same two-term order both ways).
WEIGHT_TOLERANCE = 1e-5


def _one_process_reference(config, dataset):
    """What DDP computes, in one process: every step runs the forward of each rank's half-batch
    separately (BatchNorm normalises with each half's own statistics, as per-process BN does),
    averages the two losses (DDP averages gradients) and takes one Adam step. Running BN
    statistics follow rank 0's half only: DDP broadcasts rank 0's buffers before every forward,
    and rank 0 writes the checkpoint.
    """
    import torch

    from pose.codec import joints_mse_loss
    from pose.hrnet import build_model
    from pose.training.dataset import EpochSampler, collate_skipping_missing
    from pose.training.trainer import build_optimizer, seed_everything

    seed_everything(0)
    model = build_model(config)
    model.init_weights()
    model.train()
    optimizer = build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.train.lr_step), config.train.lr_factor)
    samplers = [EpochSampler(dataset, RANKS, rank, shuffle=True, seed=0) for rank in range(RANKS)]
    steps = 0
    for epoch in range(EPOCHS):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
            scheduler.step()
        keys = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            keys.append(list(sampler))
        for start in range(0, len(keys[0]), PER_RANK_BATCH):
            halves = [collate_skipping_missing([dataset[key] for key in rank_keys[start:start + PER_RANK_BATCH]])
                      for rank_keys in keys]
            buffers = {name: value.clone() for name, value in model.named_buffers()}
            optimizer.zero_grad(set_to_none=True)
            for rank in reversed(range(RANKS)):  # rank 0 last: its running statistics are the ones kept
                with torch.no_grad():
                    for name, value in model.named_buffers():
                        value.copy_(buffers[name])
                half = halves[rank]
                # Each half's backward before the next forward: BN saves its buffers' versions for backward.
                (joints_mse_loss(model(half["input"]), half["target"], half["target_weight"]) / RANKS).backward()
            optimizer.step()
            steps += 1
    return model, steps


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_and_only_rank_0_writes(tmp_path):
    import torch

    import pose
    from cli.train import build_train_dataset

    data = synthetic_set(tmp_path / "data", TRAIN_IMAGES, 8)
    out, records = tmp_path / "run", tmp_path / "writes"
    overrides = ("TRAIN.BATCH_SIZE_PER_GPU", str(PER_RANK_BATCH))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(RANKS),
               str(ROOT / "tests" / "torchrun_recording_writes.py"), str(records),
               *train_command(SMALL_CONFIG, data, out, EPOCHS, overrides=overrides)]
    # torchrun sets OMP_NUM_THREADS=1 itself for several processes per node; said here for the reference too.
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]

    config = pose.load_config(SMALL_CONFIG, [f"DATASET.ROOT={data}", f"TRAIN.BATCH_SIZE_PER_GPU={PER_RANK_BATCH}"])
    dataset, _ = build_train_dataset(config, argparse.Namespace(train_ann=None, train_images=None, layout=None, seed=0))
    with torch_threads(1):
        reference, steps = _one_process_reference(config, dataset)
    assert steps == EPOCHS * TRAIN_IMAGES // (PER_RANK_BATCH * RANKS)

    distributed = torch.load(out / "final_state.pth", weights_only=True)
    expected = reference.state_dict()
    assert sorted(distributed) == sorted(expected)
    checkpoint = torch.load(out / "checkpoint.pth", weights_only=True)
    assert checkpoint["epoch"] == EPOCHS and checkpoint["scheduler"]["last_epoch"] == EPOCHS
    worst = max(float((distributed[k].double() - expected[k].double()).abs().max()) for k in expected)
    parameters = {name for name, _ in reference.named_parameters()}
    moved = max(float((expected[k] - v).abs().max()) for k, v in _initial_weights(config).items() if k in parameters)
    print(f"largest difference from the one-process reference {worst:.2e}; largest weight change over the run {moved:.2e}")
    assert worst <= WEIGHT_TOLERANCE
    assert moved > 100 * WEIGHT_TOLERANCE, "the weights barely moved: the comparison would prove nothing"

    # Files: exactly the trainer's outputs, each finished by rank 0 alone, once per epoch.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pth", "curve.png", "final_state.pth",
                                                      "log.csv", "model_best.pth"]
    rank0 = [os.path.basename(line) for line in (records / "rank0.txt").read_text().split()]
    assert (records / "rank1.txt").read_text() == ""
    for name in ("checkpoint.pth", "log.csv", "curve.png"):
        assert rank0.count(name) == EPOCHS, rank0
    assert rank0.count("final_state.pth") == 1 and 1 <= rank0.count("model_best.pth") <= EPOCHS
    assert (out / "log.csv").read_text().count("\n") == EPOCHS + 1


def _initial_weights(config):
    from pose.hrnet import build_model
    from pose.training.trainer import seed_everything

    seed_everything(0)
    model = build_model(config)
    model.init_weights()
    return model.state_dict()
