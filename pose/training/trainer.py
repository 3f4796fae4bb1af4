"""The HRNet training loop with the official recipe (tools/train.py, lib/core/function.py `train`).

Every recipe value comes from the `ExperimentConfig`:

- model: `pose.build_model` then the official training init (conv weights
  normal(0, 0.001), BN 1/0), then, when given (`init_weights` or
  MODEL.PRETRAINED), the ImageNet backbone for the top-level names in
  MODEL.EXTRA.PRETRAINED_LAYERS (the official non-strict load; what was and
  was not loaded is logged, a shape mismatch is an error);
- loss: JointsMSELoss (`pose.codec.joints_mse_loss`) with target weights when
  LOSS.USE_TARGET_WEIGHT;
- optimiser: TRAIN.OPTIMIZER adam (TRAIN.LR, no weight decay, as the official
  code creates it) or sgd (LR, MOMENTUM, WD, NESTEROV);
- schedule: MultiStepLR(TRAIN.LR_STEP, TRAIN.LR_FACTOR) stepped at the START of
  every epoch, as the official loop does (so with LR_STEP 170, 200 the rate is
  LR for epochs 0-168, LR x 0.1 for 169-198 and LR x 0.01 after, 0-based;
  FACTS section 8), from TRAIN.BEGIN_EPOCH to TRAIN.END_EPOCH;
- batch: TRAIN.BATCH_SIZE_PER_GPU per process, TRAIN.SHUFFLE, WORKERS loader
  processes, PIN_MEMORY; CUDNN.* flags.

Distributed: under `torchrun` (WORLD_SIZE > 1) the process group is created
from the environment (`gloo` on CPU, `nccl` on CUDA, one GPU per process at
LOCAL_RANK), the model is wrapped in DistributedDataParallel, every rank reads
its share through a DistributedSampler, and only rank 0 validates and writes
files. The global batch is BATCH_SIZE_PER_GPU x WORLD_SIZE, as in the official
multi-GPU runs. BatchNorm statistics are per process (as the official
DataParallel runs): there is no SyncBatchNorm on the CPU.

Determinism: `seed` seeds Python, numpy and torch before the model is built;
the data order is the sampler's permutation of (seed, epoch) and each
sample's augmentation is drawn from a generator of (seed, epoch, index)
(`pose.training.augment`), so a run resumed from `checkpoint.pth` continues
exactly as if it had never stopped (on the CPU; CUDA kernels may not be
deterministic unless CUDNN.DETERMINISTIC is set).
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from pose.checkpoints import read_state_dict
from pose.codec import joints_mse_loss
from pose.hrnet import build_model
from pose.training import checkpoint as ckpt
from pose.training import logbook
from pose.training.dataset import EpochSampler, collate_skipping_missing

logger = logging.getLogger(__name__)

Validate = Callable[[torch.nn.Module, int], dict[str, float]]
_PROCESS_GROUP_TIMEOUT = timedelta(hours=2)  # rank 0 validates while the others wait at a barrier


@dataclass(frozen=True)
class TrainOptions:
    """What the config does not say: where to write, which device, how often to validate.

    Attributes:
        out_dir: folder of checkpoints, log.csv and curve.png (created).
        device: "cpu", "cuda" or "cuda:N" (under torchrun, CUDA ranks use cuda:LOCAL_RANK).
        seed: base seed of everything random.
        val_every: validate after every N-th epoch (and after the last one).
        metric: key of the `validate` result that decides the best checkpoint (higher is better).
        amp: mixed precision (float16 autocast + GradScaler); None = on for CUDA, off on the CPU.
        progress: show the tqdm bar (rank 0 only).
        resume: a `checkpoint.pth` to continue from.
        init_weights: ImageNet-pretrained (or any official-name) weights for the PRETRAINED_LAYERS.
    """

    out_dir: Path
    device: str = "cpu"
    seed: int = 0
    val_every: int = 1
    metric: str = "AP"
    amp: bool | None = None
    progress: bool = True
    resume: Path | None = None
    init_weights: Path | None = None


@dataclass
class DistributedContext:
    """This process's place in a torchrun job (world_size 1 when not distributed)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    started_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls, device_type: str) -> "DistributedContext":
        """Join the torchrun process group when WORLD_SIZE > 1."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()

        context = cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world_size)
        if not dist.is_initialized():
            backend = "nccl" if device_type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, timeout=_PROCESS_GROUP_TIMEOUT)
            context.started_group = True
        return context


def build_optimizer(model: torch.nn.Module, config) -> torch.optim.Optimizer:
    """Official `get_optimizer`: Adam(lr) without weight decay, or SGD(lr, momentum, wd, nesterov)."""
    train = config.train
    if train.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=train.lr)
    if train.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=train.lr, momentum=train.momentum,
                               weight_decay=train.wd, nesterov=train.nesterov)
    raise ValueError(f"{config.source}: TRAIN.OPTIMIZER must be 'adam' or 'sgd', got {train.optimizer!r}")


def load_pretrained_layers(model: torch.nn.Module, path: str | os.PathLike, layers: tuple[str, ...]) -> list[str]:
    """Official `init_weights(pretrained)`: copy the file's entries whose top-level name is in
    `layers` ('*' = all), non-strictly. Returns the loaded keys.

    Raises ValueError naming the file when nothing fits or a shape differs.
    """
    path = Path(path)
    found = read_state_dict(path)
    wanted = {k: v for k, v in found.items() if (layers and layers[0] == "*") or k.split(".")[0] in layers}
    own = model.state_dict()
    mismatched = [f"{k}: file {list(v.shape)} vs model {list(own[k].shape)}" for k, v in wanted.items()
                  if k in own and v.shape != own[k].shape]
    if mismatched:
        raise ValueError(f"{path}: pretrained weights do not fit the model: {'; '.join(mismatched[:5])}")
    usable = {k: v for k, v in wanted.items() if k in own}
    if not usable:
        raise ValueError(f"{path}: no entry matches the model's PRETRAINED_LAYERS {list(layers)}")
    model.load_state_dict(usable, strict=False)
    skipped = len(found) - len(usable)
    left = [k for k in own if k not in usable]
    logger.info("%s: loaded %d tensors for %s; %d in the file not used; %d model tensors keep the training init",
                path, len(usable), ",".join(layers), skipped, len(left))
    return sorted(usable)


def training_step(model, optimizer, batch: dict, device: torch.device, use_target_weight: bool,
                  scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One optimisation step on a collated batch; returns the (detached) loss."""
    inputs = batch["input"].to(device, non_blocking=True)
    target = batch["target"].to(device, non_blocking=True)
    weight = batch["target_weight"].to(device, non_blocking=True) if use_target_weight else None
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=scaler is not None):
        output = model(inputs)
    loss = joints_mse_loss(output.float(), target, weight)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class _State:
    epoch: int
    best_perf: float = -math.inf
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Train an HRNet experiment on a `TopDownDataset` (see the module docstring).

    Args:
        config: `ExperimentConfig`.
        train_dataset: items as `pose.training.dataset.TopDownDataset` yields them, addressed by (epoch, index).
        options: `TrainOptions`.
        validate: `validate(model, epoch) -> {metric: value}` run on rank 0
            (the model is in eval mode and unwrapped); None = no validation.
    """

    def __init__(self, config, train_dataset: Dataset, options: TrainOptions, validate: Validate | None = None):
        self.config = config
        self.dataset = train_dataset
        self.options = options
        self.validate = validate
        requested = torch.device(options.device)
        self.context = DistributedContext.from_environment(requested.type)
        if requested.type == "cuda":
            index = self.context.local_rank if self.context.distributed else (requested.index or 0)
            self.device = torch.device("cuda", index)
            torch.cuda.set_device(self.device)
        else:
            self.device = requested
        cudnn = config.cudnn
        torch.backends.cudnn.benchmark = cudnn.benchmark
        torch.backends.cudnn.deterministic = cudnn.deterministic
        torch.backends.cudnn.enabled = cudnn.enabled
        seed_everything(options.seed)

        model = build_model(config)
        model.init_weights()
        pretrained = options.init_weights or (config.model.pretrained or None)
        if pretrained and options.resume is None:
            load_pretrained_layers(model, pretrained, config.model.extra.pretrained_layers)
        self.model = model.to(self.device)
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, list(config.train.lr_step), config.train.lr_factor)
        amp = options.amp if options.amp is not None else self.device.type == "cuda"
        if amp and self.device.type != "cuda":
            raise ValueError("mixed precision training needs a CUDA device")
        self.scaler = torch.amp.GradScaler("cuda") if amp else None
        self.state = _State(epoch=config.train.begin_epoch)
        self.out_dir = Path(options.out_dir)
        resume = options.resume
        if resume is None and config.auto_resume and (self.out_dir / "checkpoint.pth").is_file():
            resume = self.out_dir / "checkpoint.pth"
        if resume is not None:
            self._resume(Path(resume))
        self.network = self.model
        if self.context.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = DistributedDataParallel(self.model, device_ids=ids)
        self.sampler = EpochSampler(train_dataset, self.context.world_size, self.context.rank,
                                    shuffle=config.train.shuffle, seed=options.seed)
        self.loader = DataLoader(
            train_dataset, batch_size=config.train.batch_size_per_gpu, sampler=self.sampler,
            num_workers=config.workers, pin_memory=config.pin_memory and self.device.type == "cuda",
            collate_fn=collate_skipping_missing, drop_last=False,
        )
        if self.context.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ state

    def _resume(self, path: Path) -> None:
        state = ckpt.load_training_state(path)
        self.model.load_state_dict(state["state_dict"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.state = _State(int(state["epoch"]), float(state.get("best_perf", -math.inf)), list(state.get("history", [])))
        ckpt.set_rng_state(state["rng"])
        if state.get("config") and state["config"] != self.config.to_dict():
            logger.warning("%s was written with a different config; continuing with %s", path, self.config.source)
        logger.info("resumed from %s at epoch %d (best %s %.4f)", path, self.state.epoch, self.options.metric, self.state.best_perf)

    def _save(self, perf: float | None) -> None:
        state = {
            "epoch": self.state.epoch,
            "model": self.config.model.name,
            "state_dict": ckpt.flat_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "perf": float("nan") if perf is None else float(perf),
            "best_perf": self.state.best_perf,
            "rng": ckpt.rng_state(),
            "history": self.state.history,
            "config": self.config.to_dict(),
        }
        ckpt.save_atomic(state, self.out_dir / "checkpoint.pth")

    # ------------------------------------------------------------------ loop

    def _barrier(self) -> None:
        if self.context.distributed:
            dist.barrier()

    def _all_sum(self, values: list[float]) -> list[float]:
        if not self.context.distributed:
            return values

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over this rank's share of the data; returns the global mean loss and images/s."""
        self.network.train()
        self.sampler.set_epoch(epoch)
        use_weight = self.config.loss.use_target_weight
        loss_sum, images, start = 0.0, 0, time.perf_counter()
        bar = tqdm(self.loader, desc=f"epoch {epoch}", unit="batch", leave=False,
                   disable=not (self.options.progress and self.context.is_main))
        for batch in bar:
            if batch is None:
                continue
            count = int(batch["input"].shape[0])
            loss = training_step(self.network, self.optimizer, batch, self.device, use_weight, self.scaler)
            loss_sum += float(loss) * count
            images += count
            rate = images * self.context.world_size / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{float(loss):.3e}", img_s=f"{rate:.1f}")
        elapsed = time.perf_counter() - start
        loss_sum, images_all, elapsed_max = self._all_sum([loss_sum, float(images), elapsed])
        if self.context.distributed:
            elapsed_max = elapsed_max / self.context.world_size
        return {"train_loss": loss_sum / max(images_all, 1.0), "images_per_s": images_all / max(elapsed_max, 1e-9)}

    def _should_validate(self, epoch: int) -> bool:
        last = epoch == self.config.train.end_epoch - 1
        return self.validate is not None and ((epoch + 1) % max(self.options.val_every, 1) == 0 or last)

    def fit(self) -> list[dict[str, Any]]:
        """Train from the current epoch to TRAIN.END_EPOCH; returns the per-epoch history."""
        end = self.config.train.end_epoch
        if self.state.epoch >= end:
            logger.info("nothing to do: epoch %d >= TRAIN.END_EPOCH %d", self.state.epoch, end)
        for epoch in range(self.state.epoch, end):
            with warnings.catch_warnings():
                # The official loop steps the scheduler before the epoch's optimiser steps, on purpose.
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
                self.scheduler.step()
            lr = self.optimizer.param_groups[0]["lr"]
            row: dict[str, Any] = {"epoch": epoch, "lr": lr, **self.train_epoch(epoch)}
            perf = None
            if self._should_validate(epoch) and self.context.is_main:
                self.model.eval()
                scores = self.validate(self.model, epoch)
                self.model.train()
                if self.options.metric not in scores:
                    raise KeyError(f"validate() returned {sorted(scores)}, not the metric {self.options.metric!r}")
                perf = float(scores[self.options.metric])
                row.update(val_metric=self.options.metric, val_value=perf)
            self.state.epoch = epoch + 1
            self.state.history.append(row)
            if self.context.is_main:
                if perf is not None and perf > self.state.best_perf:
                    self.state.best_perf = perf
                    ckpt.save_weights(self.model, self.out_dir / "model_best.pth")
                self._save(perf)
                logbook.write_csv(self.state.history, self.out_dir / "log.csv")
                logbook.write_plot(self.state.history, self.out_dir / "curve.png")
                logger.info("epoch %d: lr %.2e loss %.4e %.1f img/s%s", epoch, lr, row["train_loss"], row["images_per_s"],
                            f" {self.options.metric} {perf:.4f}" if perf is not None else "")
            self._barrier()
        if self.context.is_main:
            ckpt.save_weights(self.model, self.out_dir / "final_state.pth")
        self._barrier()
        return self.state.history

    def close(self) -> None:
        """Leave the process group if this trainer created it."""
        if self.context.started_group:
            dist.destroy_process_group()
            self.context.started_group = False
