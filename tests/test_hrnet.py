"""PoseHighResolutionNet against the official code: numbers, state_dict layout, counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from pose import build_model
from pose.hrnet import PoseHighResolutionNet


def _manifest(path) -> list[tuple[str, list[int], str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key, shape, dtype = line.split("\t")
        rows.append((key, json.loads(shape), dtype))
    return rows


def _layout(model: nn.Module) -> list[tuple[str, list[int], str]]:
    return [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]


def _shapes_only(config) -> PoseHighResolutionNet:
    """The network on the meta device: every key, shape, dtype and module, no memory or init time
    (a W48 takes seconds to initialise on the CPU; these tests never run it)."""
    with torch.device("meta"):
        return build_model(config)


@pytest.fixture(scope="module")
def tiny_model(hrnet_reference_dir) -> PoseHighResolutionNet:
    model = build_model(hrnet_reference_dir / "dev_tiny.yaml")
    state = torch.load(hrnet_reference_dir / "dev_tiny_state_dict.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_io(hrnet_reference_dir):
    return np.load(hrnet_reference_dir / "dev_tiny_io.npz")


def _assert_close_to_reference(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    error = np.abs(ours - ref).max()
    assert error <= 1e-4 * np.abs(ref).max(), f"max abs error {error} vs max |ref| {np.abs(ref).max()}"


def test_dev_tiny_output_matches_the_official_code(tiny_model, tiny_io):
    with torch.no_grad():
        output = tiny_model(torch.from_numpy(tiny_io["input"])).numpy()
    _assert_close_to_reference(output, tiny_io["output"])


def test_dev_tiny_flipped_input_matches(tiny_model, tiny_io):
    with torch.no_grad():
        output = tiny_model(torch.from_numpy(tiny_io["input"]).flip(3)).numpy()
    _assert_close_to_reference(output, tiny_io["output_flipped_input_raw"])


def test_dev_tiny_state_dict_order_is_the_official_one(tiny_model, hrnet_reference_dir):
    state = torch.load(hrnet_reference_dir / "dev_tiny_state_dict.pt", map_location="cpu", weights_only=True)
    assert list(tiny_model.state_dict()) == list(state)
    # The last module of stage 4 fuses only output 0 (single-scale output).
    assert any(k.startswith("stage4.2.fuse_layers.0.") for k in state)
    assert not any(k.startswith("stage4.2.fuse_layers.1.") for k in state)
    assert any(k.startswith("stage4.1.fuse_layers.3.") for k in state)


def test_output_shape_matches_metadata(tiny_model):
    width, height = tiny_model.image_size
    with torch.no_grad():
        output = tiny_model(torch.zeros(1, 3, height, width))
    assert output.shape == (1, tiny_model.num_keypoints, *tiny_model.heatmap_size[::-1])
    assert tiny_model.heatmap_size == (width // 4, height // 4)
    assert tiny_model.num_keypoints == 17 and tiny_model.size_multiple == 32
    assert tiny_model.mean == (0.485, 0.456, 0.406) and tiny_model.std == (0.229, 0.224, 0.225)


def test_other_input_sizes_work_when_multiples_of_32(tiny_model):
    with torch.no_grad():
        assert tiny_model(torch.zeros(1, 3, 64, 96)).shape == (1, 17, 16, 24)


@pytest.mark.parametrize("shape", [(1, 3, 160, 100), (1, 3, 150, 128), (1, 3, 48, 64)])
def test_input_not_multiple_of_32_is_a_clear_error(tiny_model, shape):
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny_model(torch.zeros(shape))


def test_wrong_channel_count_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        tiny_model(torch.zeros(1, 1, 160, 128))


@pytest.mark.parametrize(
    ("name", "manifest", "joints", "parameters"),
    [
        ("coco/w32_256x192", "state_dict_w32_256x192.tsv", 17, 28_536_113),
        ("coco/w48_384x288", "state_dict_w48_384x288.tsv", 17, 63_595_745),
        ("mpii/w32_256x256", "state_dict_w32_256x192.tsv", 16, 28_536_080),
        ("mpii/w48_256x256", "state_dict_w48_384x288.tsv", 16, 63_595_696),
    ],
)
def test_official_configs_have_the_official_state_dict(hrnet_reference_dir, name, manifest, joints, parameters):
    model = _shapes_only(name)
    expected = _manifest(hrnet_reference_dir / manifest)
    if joints != 17:  # MPII: same as COCO except the 16-joint head
        expected = [
            (k, [joints, *shape[1:]] if k.startswith("final_layer.") else shape, dtype) for k, shape, dtype in expected
        ]
    assert len(expected) == 1754
    assert _layout(model) == expected  # keys, shapes, dtypes and order
    assert sum(p.numel() for p in model.parameters()) == parameters
    assert model.num_keypoints == joints


def test_same_width_shares_the_manifest(hrnet_reference_dir):
    assert _layout(_shapes_only("coco/w32_384x288")) == _manifest(hrnet_reference_dir / "state_dict_w32_256x192.tsv")


def test_every_batch_norm_uses_the_official_eps_and_momentum():
    model = _shapes_only("coco/w32_256x192")
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 292
    assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in norms)
    upsamples = [m for m in model.modules() if isinstance(m, nn.Upsample)]
    assert upsamples and all(m.mode == "nearest" for m in upsamples)


def _custom_config(hrnet_reference_dir, **stages) -> dict:
    with open(hrnet_reference_dir / "dev_tiny.yaml", encoding="utf-8") as stream:
        raw = yaml.safe_load(stream)
    for key, spec in stages.items():
        raw["MODEL"]["EXTRA"][key] = spec
    return raw


def test_bottleneck_stages_multi_step_transitions_and_width_changes(hrnet_reference_dir):
    raw = _custom_config(
        hrnet_reference_dir,
        # Three branches straight from layer1: the 1/16 branch needs two stride-2 steps.
        STAGE2={"NUM_MODULES": 1, "NUM_BRANCHES": 3, "BLOCK": "BOTTLENECK", "NUM_BLOCKS": [1, 1, 1],
                "NUM_CHANNELS": [4, 8, 16], "FUSE_METHOD": "SUM"},
        # Branch widths change from stage to stage: projection transitions.
        STAGE3={"NUM_MODULES": 2, "NUM_BRANCHES": 3, "BLOCK": "BASIC", "NUM_BLOCKS": [1, 2, 1],
                "NUM_CHANNELS": [8, 16, 24], "FUSE_METHOD": "SUM"},
        STAGE4={"NUM_MODULES": 1, "NUM_BRANCHES": 4, "BLOCK": "BASIC", "NUM_BLOCKS": [1, 1, 1, 1],
                "NUM_CHANNELS": [8, 16, 24, 40], "FUSE_METHOD": "SUM"},
    )
    raw["MODEL"]["NUM_JOINTS"] = 5
    torch.manual_seed(0)
    model = build_model(raw).eval()
    keys = model.state_dict()
    # transition1.2: two nested stride-2 steps, the first keeps the 256 input channels.
    assert keys["transition1.2.0.0.weight"].shape == (256, 256, 3, 3)
    assert keys["transition1.2.1.0.weight"].shape == (64, 256, 3, 3)
    # Bottleneck expansion 4: stage 2 branch 0 is 16 wide; stage 3 projects 16 -> 8.
    assert keys["stage2.0.branches.0.0.conv3.weight"].shape == (16, 4, 1, 1)
    assert keys["transition2.0.0.weight"].shape == (8, 16, 3, 3)
    assert "transition3.0.0.weight" not in keys  # unchanged width: no transition
    # Two-step downsampling inside a fuse: ReLU only after the first step.
    path = model.stage3[0].fuse_layers[2][0]
    assert [type(m) for m in path[0]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert [type(m) for m in path[1]] == [nn.Conv2d, nn.BatchNorm2d]
    with torch.no_grad():
        output = model(torch.randn(2, 3, 64, 32))
    assert output.shape == (2, 5, 16, 8) and torch.isfinite(output).all()


def test_final_conv_kernel_3_keeps_the_heatmap_size(hrnet_reference_dir):
    raw = _custom_config(hrnet_reference_dir)
    raw["MODEL"]["EXTRA"]["FINAL_CONV_KERNEL"] = 3
    model = build_model(raw).eval()
    assert model.final_layer.weight.shape == (17, 12, 3, 3)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 160, 128)).shape == (1, 17, 40, 32)


def test_init_weights_is_the_official_training_init(hrnet_reference_dir):
    torch.manual_seed(0)
    model = build_model(hrnet_reference_dir / "dev_tiny.yaml")
    model.init_weights()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.001) < 1e-4 and abs(weights.mean().item()) < 1e-4
    assert torch.all(model.final_layer.bias == 0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
