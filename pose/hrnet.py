"""PoseHighResolutionNet: the official HRNet pose network (Sun et al., CVPR 2019).

Module names, registration order and shapes equal the official
lib/models/pose_hrnet.py, so official checkpoints load with ``strict=True``
(same state_dict keys in the same order). Where the official code stores
``None`` (transition entries of unchanged branches, the identity entry of each
fuse row) we store `nn.Identity`, which has no parameters and therefore does
not change any key.

The network maps a normalised RGB crop batch (N, 3, H, W) float32 to raw
heatmaps (N, J, H/4, W/4): no activation, values may be negative. It does no
coordinate math; pre/post-processing lives in the pose codec.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from pose.config import ExperimentConfig, StageSpec, load_config

logger = logging.getLogger(__name__)

BN_MOMENTUM = 0.1
BN_EPS = 1e-5
# ImageNet normalisation of 0..1 RGB input (torchvision Normalize in the official code).
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
# Fixed by the official code, not configurable.
STEM_CHANNELS = 64
LAYER1_PLANES = 64
LAYER1_BLOCKS = 4


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Shortcut projection (keys ``downsample.0`` conv, ``downsample.1`` BN)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        _batch_norm(out_channels),
    )


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = _conv3x3(in_channels, planes, stride)
        self.bn1 = _batch_norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = _batch_norm(planes)
        needs_projection = stride != 1 or in_channels != out_channels
        self.downsample = _projection(in_channels, out_channels, stride) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1(x4)-BN, plus the shortcut, then ReLU."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, bias=False)
        self.bn1 = _batch_norm(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = _batch_norm(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, kernel_size=1, bias=False)
        self.bn3 = _batch_norm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        needs_projection = stride != 1 or in_channels != out_channels
        self.downsample = _projection(in_channels, out_channels, stride) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def _make_blocks(block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int, count: int) -> nn.Sequential:
    layers = [block(in_channels, planes)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, count)]
    return nn.Sequential(*layers)


def _downsample_path(in_channels: int, out_channels: int, steps: int, last_relu: bool) -> nn.Sequential:
    """`steps` stride-2 conv3x3-BN(-ReLU) blocks, each its own nested Sequential;
    all but the last keep `in_channels`, and all but the last end with ReLU
    (the last one only if `last_relu`)."""
    layers = []
    for step in range(steps):
        last = step == steps - 1
        out = out_channels if last else in_channels
        parts: list[nn.Module] = [_conv3x3(in_channels, out, stride=2), _batch_norm(out)]
        if not last or last_relu:
            parts.append(nn.ReLU(inplace=True))
        layers.append(nn.Sequential(*parts))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches, then fusion: output i = ReLU(sum over j of F_ij(x_j)),
    summed in the order j = 0, 1, ... (F_ii = identity; j > i: conv1x1-BN then
    nearest upsampling by 2^(j-i); j < i: i-j stride-2 conv3x3 steps).
    With `multi_scale_output` False only output 0 is fused and returned."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        num_blocks: tuple[int, ...],
        in_channels: tuple[int, ...],
        num_channels: tuple[int, ...],
        multi_scale_output: bool = True,
    ) -> None:
        super().__init__()
        if not len(num_blocks) == len(in_channels) == len(num_channels):
            raise ValueError(
                f"HighResolutionModule: NUM_BLOCKS {list(num_blocks)}, input widths {list(in_channels)} "
                f"and NUM_CHANNELS {list(num_channels)} must have one entry per branch"
            )
        self.num_branches = len(num_channels)
        self.branches = nn.ModuleList(
            _make_blocks(block, in_channels[b], num_channels[b], num_blocks[b]) for b in range(self.num_branches)
        )
        self.out_channels = tuple(c * block.expansion for c in num_channels)
        # A single branch has nothing to fuse (the official code stores None: no keys either way).
        num_outputs = 0 if self.num_branches == 1 else (self.num_branches if multi_scale_output else 1)
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(self._fuse_path(i, j) for j in range(self.num_branches)) for i in range(num_outputs)
        )
        self.relu = nn.ReLU(inplace=True)

    def _fuse_path(self, i: int, j: int) -> nn.Module:
        channels = self.out_channels
        if j > i:
            return nn.Sequential(
                nn.Conv2d(channels[j], channels[i], kernel_size=1, stride=1, padding=0, bias=False),
                _batch_norm(channels[i]),
                nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
            )
        if j == i:
            return nn.Identity()
        return _downsample_path(channels[j], channels[i], steps=i - j, last_relu=False)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        x = [branch(features) for branch, features in zip(self.branches, x)]
        if self.num_branches == 1:
            return x
        fused = []
        for row in self.fuse_layers:
            y = row[0](x[0])
            for j in range(1, self.num_branches):
                y = y + row[j](x[j])
            fused.append(self.relu(y))
        return fused


class PoseHighResolutionNet(nn.Module):
    """The official HRNet top-down pose network.

    Metadata: `num_keypoints`, `image_size` and `heatmap_size` as (width, height)
    pixels from the config, `mean`/`std` (RGB, for 0..1 input), `size_multiple`
    (input width and height must be multiples of it; 32 for 4 branches) and
    `config` (the `ExperimentConfig` it was built from).
    """

    def __init__(self, config: ExperimentConfig) -> None:
        super().__init__()
        extra = config.model.extra
        self.config = config
        self.num_keypoints = config.model.num_joints
        self.image_size = tuple(config.model.image_size)
        self.heatmap_size = tuple(config.model.heatmap_size)
        self.mean = IMAGENET_MEAN_RGB
        self.std = IMAGENET_STD_RGB
        self.size_multiple = extra.size_multiple

        # Registration order below is the official state_dict order.
        self.conv1 = _conv3x3(3, STEM_CHANNELS, stride=2)
        self.bn1 = _batch_norm(STEM_CHANNELS)
        self.conv2 = _conv3x3(STEM_CHANNELS, STEM_CHANNELS, stride=2)
        self.bn2 = _batch_norm(STEM_CHANNELS)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer1()

        previous = (LAYER1_PLANES * Bottleneck.expansion,)
        for number, spec in zip((2, 3, 4), extra.stages):
            widths = tuple(c * BLOCKS[spec.block].expansion for c in spec.num_channels)
            transition = self._make_transition(previous, widths)
            # Only the final module of the last stage drops the lower-resolution outputs.
            stage, previous = self._make_stage(spec, widths, multi_scale_output=number != 4)
            setattr(self, f"transition{number - 1}", transition)
            setattr(self, f"stage{number}", stage)

        kernel = extra.final_conv_kernel
        self.final_layer = nn.Conv2d(
            previous[0], self.num_keypoints, kernel_size=kernel, stride=1, padding=1 if kernel == 3 else 0
        )

    @staticmethod
    def _make_layer1() -> nn.Sequential:
        return _make_blocks(Bottleneck, STEM_CHANNELS, LAYER1_PLANES, LAYER1_BLOCKS)

    @staticmethod
    def _make_transition(previous: tuple[int, ...], current: tuple[int, ...]) -> nn.ModuleList:
        """Entry i adapts branch i (conv3x3-BN-ReLU if its width changes, else
        identity); a new branch i is made from the lowest-resolution previous
        output by i-len(previous)+1 stride-2 steps (nested Sequential, so the
        official keys read ``transition1.1.0.0.weight``)."""
        entries: list[nn.Module] = []
        for i, width in enumerate(current):
            if i < len(previous):
                if width != previous[i]:
                    entries.append(nn.Sequential(_conv3x3(previous[i], width), _batch_norm(width), nn.ReLU(inplace=True)))
                else:
                    entries.append(nn.Identity())
            else:
                entries.append(_downsample_path(previous[-1], width, steps=i + 1 - len(previous), last_relu=True))
        return nn.ModuleList(entries)

    @staticmethod
    def _make_stage(spec: StageSpec, in_channels: tuple[int, ...], multi_scale_output: bool) -> tuple[nn.Sequential, tuple[int, ...]]:
        block = BLOCKS[spec.block]
        modules = []
        for index in range(spec.num_modules):
            last = index == spec.num_modules - 1
            module = HighResolutionModule(
                block, spec.num_blocks, in_channels, spec.num_channels,
                multi_scale_output=multi_scale_output or not last,
            )
            modules.append(module)
            in_channels = module.out_channels
        return nn.Sequential(*modules), in_channels

    @staticmethod
    def _run_transition(transition: nn.ModuleList, previous: list[torch.Tensor]) -> list[torch.Tensor]:
        # Existing branches take their own previous output; new ones the lowest-resolution
        # output. (The official code feeds the lowest-resolution output to every non-None
        # entry, which only differs for configs that change an existing branch's width
        # and would crash there.)
        return [
            entry(previous[i] if i < len(previous) else previous[-1])
            for i, entry in enumerate(transition)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) float, ImageNet-normalised RGB; H and W multiples of
        `size_multiple`. Returns raw heatmaps (N, num_keypoints, H/4, W/4)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"PoseHighResolutionNet expects input of shape (N, 3, H, W), got {tuple(x.shape)}")
        height, width = int(x.shape[2]), int(x.shape[3])
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(
                f"PoseHighResolutionNet input height and width must be multiples of {self.size_multiple}, "
                f"got {height}x{width} (HxW); the configured input is {self.image_size[1]}x{self.image_size[0]}"
            )
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        features = [self.layer1(x)]
        for transition, stage in (
            (self.transition1, self.stage2),
            (self.transition2, self.stage3),
            (self.transition3, self.stage4),
        ):
            features = stage(self._run_transition(transition, features))
        return self.final_layer(features[0])

    @torch.no_grad()
    def init_weights(self) -> None:
        """The official training initialisation: conv weights normal(std 0.001),
        conv biases 0, BatchNorm weight 1 and bias 0. (Loading the ImageNet
        backbone for PRETRAINED_LAYERS is a training concern, done afterwards.)"""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.001)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def build_model(config: str | Path | Mapping[str, Any] | ExperimentConfig) -> PoseHighResolutionNet:
    """Build the network for an experiment (YAML path, registry name, official-schema
    dict or `ExperimentConfig`). Weights are PyTorch's default init, as in the
    official ``get_pose_net(cfg, is_train=False)``: load a checkpoint next
    (`pose.load_weights`) or call `init_weights()` for training."""
    experiment = load_config(config)
    model = PoseHighResolutionNet(experiment)
    logger.debug("built %s from %s", type(model).__name__, experiment.source)
    return model
