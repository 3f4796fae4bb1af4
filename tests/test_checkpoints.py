"""Checkpoint loading: every supported layout loads strictly; bad files fail clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from pose import build_model, load_weights
from pose.checkpoints import CheckpointError, infer_width_and_keypoints, read_state_dict


@pytest.fixture(scope="module")
def tiny_raw(hrnet_reference_dir) -> dict:
    with open(hrnet_reference_dir / "dev_tiny.yaml", encoding="utf-8") as stream:
        return yaml.safe_load(stream)


@pytest.fixture(scope="module")
def reference_state(hrnet_reference_dir) -> dict[str, torch.Tensor]:
    """Seeded tiny-model weights in the official key layout and order."""
    return torch.load(hrnet_reference_dir / "dev_tiny_state_dict.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def tiny_io(hrnet_reference_dir):
    return np.load(hrnet_reference_dir / "dev_tiny_io.npz")


def _fresh_model(raw: dict):
    torch.manual_seed(123)  # a different init than the checkpoint, so loading must change the output
    return build_model(raw).eval()


def _mmpose_keys(state: dict, head: str) -> dict:
    out = {}
    for key, value in state.items():
        if key.startswith("final_layer."):
            out[head + key] = value
        else:
            out["backbone." + key] = value
    return out


FORMATS = {
    "official": lambda s: dict(s),
    "training": lambda s: {"state_dict": {"module." + k: v for k, v in s.items()}, "epoch": 210, "perf": 0.744},
    "mmpose0x": lambda s: {"state_dict": _mmpose_keys(s, "keypoint_head."),
                           "meta": {"epoch": 210, "mmcv_version": "1.1.1"}},
    "mmpose1x": lambda s: {"state_dict": _mmpose_keys(s, "head."), "meta": {"epoch": 210}},
    "mmpose1x_with_preprocessor": lambda s: {
        "state_dict": {
            **_mmpose_keys(s, "head."),
            "data_preprocessor.mean": torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1),
            "data_preprocessor.std": torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1),
        },
        "meta": {},
    },
}


@pytest.mark.parametrize("layout", sorted(FORMATS))
def test_every_layout_loads_and_reproduces_the_reference(tmp_path, tiny_raw, reference_state, tiny_io, layout):
    path = tmp_path / f"{layout}.pth"
    torch.save(FORMATS[layout](reference_state), path)
    model = _fresh_model(tiny_raw)
    load_weights(model, path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference_state[key]), key
    with torch.no_grad():
        output = model(torch.from_numpy(tiny_io["input"])).numpy()
    ref = tiny_io["output"]
    assert np.abs(output - ref).max() <= 1e-4 * np.abs(ref).max()


def test_read_state_dict_returns_official_names_in_file_order(tmp_path, reference_state):
    path = tmp_path / "mm1.pth"
    torch.save(FORMATS["mmpose1x"](reference_state), path)
    assert list(read_state_dict(path)) == list(reference_state)


def test_missing_num_batches_tracked_is_filled_with_zero(tmp_path, tiny_raw, reference_state):
    state = {k: v for k, v in reference_state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "no_nbt.pth"
    torch.save(state, path)
    model = _fresh_model(tiny_raw)
    load_weights(model, path)
    assert model.bn1.num_batches_tracked.item() == 0
    assert torch.equal(model.final_layer.weight, reference_state["final_layer.weight"])


def test_half_precision_file_is_converted(tmp_path, tiny_raw, reference_state):
    path = tmp_path / "fp16.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in reference_state.items()}, path)
    model = _fresh_model(tiny_raw)
    load_weights(model, path)
    assert model.conv1.weight.dtype == torch.float32
    assert torch.equal(model.conv1.weight, reference_state["conv1.weight"].half().float())


def test_infer_width_and_keypoints(reference_state, tiny_raw):
    assert infer_width_and_keypoints(reference_state) == (12, 17)
    raw = {**tiny_raw, "MODEL": {**tiny_raw["MODEL"], "NUM_JOINTS": 16}}
    assert infer_width_and_keypoints(build_model(raw).state_dict()) == (12, 16)
    with pytest.raises(CheckpointError, match="not an HRNet"):
        infer_width_and_keypoints({"fc.weight": torch.zeros(2, 2)})


def test_missing_file(tmp_path, tiny_raw):
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        load_weights(_fresh_model(tiny_raw), tmp_path / "absent.pth")


@pytest.mark.parametrize("content", [b"this is not a checkpoint\n", bytes(range(1, 256)) * 20, b""],
                         ids=["text", "random bytes", "empty"])
def test_not_a_torch_file(tmp_path, tiny_raw, content):
    path = tmp_path / "notes.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="notes.pth: not a weights file") as info:
        load_weights(_fresh_model(tiny_raw), path)
    assert "run code" not in str(info.value)  # that refusal is for real pickles with objects


def test_truncated_file(tmp_path, tiny_raw, reference_state):
    full = tmp_path / "full.pth"
    torch.save(reference_state, full)
    path = tmp_path / "truncated.pth"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        load_weights(_fresh_model(tiny_raw), path)


class _Arbitrary:
    """Not a tensor: weights_only loading must refuse to unpickle it."""


def test_pickled_objects_are_refused(tmp_path, tiny_raw):
    path = tmp_path / "pickle.pth"
    torch.save({"state_dict": _Arbitrary()}, path)
    with pytest.raises(CheckpointError, match="pickle.pth") as info:
        load_weights(_fresh_model(tiny_raw), path)
    assert issubclass(CheckpointError, ValueError)
    message = str(info.value)
    # torch's message advises weights_only=False (unsafe for files from elsewhere): never passed on
    assert "weights_only" not in message and "False" not in message
    assert "\x1b" not in message  # no terminal colour codes
    assert "run code" in message


def test_a_folder_given_as_weights_says_it_is_a_folder(tmp_path, tiny_raw):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_weights(_fresh_model(tiny_raw), tmp_path)


def test_non_tensor_entries_are_refused(tmp_path, tiny_raw):
    path = tmp_path / "numbers.pth"
    torch.save({"conv1.weight": 3, "epoch": 5}, path)
    with pytest.raises(CheckpointError, match="numbers.pth: expected a state dict of tensors"):
        load_weights(_fresh_model(tiny_raw), path)


def test_wrong_architecture_lists_missing_and_unexpected(tmp_path, tiny_raw):
    path = tmp_path / "resnet.pth"
    torch.save({f"layer{i}.weight": torch.zeros(4) for i in range(8)}, path)
    with pytest.raises(CheckpointError) as info:
        load_weights(_fresh_model(tiny_raw), path)
    message = str(info.value)
    assert "resnet.pth" in message
    assert "8 unexpected keys (layer0.weight, layer1.weight" in message and "(3 more)" in message
    assert "missing keys (conv1.weight, bn1.weight" in message


def test_wider_file_into_narrower_model_lists_shape_mismatches(tmp_path, tiny_raw):
    # The W48-into-W32 mistake at tiny scale: same keys, other widths.
    wide = {**tiny_raw, "MODEL": {**tiny_raw["MODEL"], "EXTRA": yaml.safe_load(yaml.safe_dump(tiny_raw["MODEL"]["EXTRA"]))}}
    for n, widths in ((2, [16, 32]), (3, [16, 32, 64]), (4, [16, 32, 64, 128])):
        wide["MODEL"]["EXTRA"][f"STAGE{n}"]["NUM_CHANNELS"] = widths
    path = tmp_path / "wide.pth"
    torch.save(build_model(wide).state_dict(), path)
    model = _fresh_model(tiny_raw)
    before = model.conv1.weight.clone()
    with pytest.raises(CheckpointError) as info:
        load_weights(model, path)
    message = str(info.value)
    assert "wide.pth" in message and "shape mismatches" in message
    assert "transition1.0.0.weight: file [16, 256, 3, 3] vs model [12, 256, 3, 3]" in message
    assert "HRNet-W16 with 17 keypoints" in message and "HRNet-W12 with 17 keypoints" in message
    assert "missing keys" not in message and "unexpected keys" not in message
    assert torch.equal(model.conv1.weight, before)  # nothing was half-loaded


def test_mpii_head_into_coco_model(tmp_path, tiny_raw, reference_state):
    state = dict(reference_state)
    state["final_layer.weight"] = state["final_layer.weight"][:16].clone()
    state["final_layer.bias"] = state["final_layer.bias"][:16].clone()
    path = tmp_path / "mpii.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_weights(_fresh_model(tiny_raw), path)
    message = str(info.value)
    assert "2 shape mismatches" in message and "final_layer.weight: file [16, 12, 1, 1] vs model [17, 12, 1, 1]" in message
    assert "with 16 keypoints" in message


def test_leftover_head_layers_are_an_error(tmp_path, tiny_raw, reference_state):
    checkpoint = FORMATS["mmpose0x"](reference_state)
    checkpoint["state_dict"]["keypoint_head.deconv_layers.0.weight"] = torch.zeros(2, 2, 4, 4)
    path = tmp_path / "deconv.pth"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"1 unexpected keys \(keypoint_head.deconv_layers.0.weight\)"):
        load_weights(_fresh_model(tiny_raw), path)


def test_other_normalisation_in_an_mmpose_file_is_an_error(tmp_path, tiny_raw, reference_state):
    checkpoint = FORMATS["mmpose1x_with_preprocessor"](reference_state)
    checkpoint["state_dict"]["data_preprocessor.mean"] = torch.zeros(3, 1, 1)
    path = tmp_path / "mean.pth"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="mean.pth: data_preprocessor.mean"):
        load_weights(_fresh_model(tiny_raw), path)


def test_mixed_layouts_colliding_are_an_error(tmp_path, tiny_raw, reference_state):
    state = dict(reference_state)
    state["backbone.conv1.weight"] = state["conv1.weight"]
    path = tmp_path / "mixed.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="same official name 'conv1.weight'"):
        load_weights(_fresh_model(tiny_raw), path)
