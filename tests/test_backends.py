"""The pose backend registry: names, refusals with reasons, artifact keys, and agreement with eager fp32."""

from __future__ import annotations

import numpy as np
import pytest

import pose
from pose import backends
from pose.backends import hardware
from pose.backends.agreement import agreement, agrees, keypoints_from_heatmaps, reference_crops
from pose.backends.identity import artifact_key, weights_id
from pose.runtime import TorchRuntime
from tests.sample_data import DATA, TINY_CONFIG

TRAINED_CONFIG = str(DATA / "trained" / "synthetic_w16_64x48.yaml")
TRAINED_WEIGHTS = str(DATA / "trained" / "synthetic_w16_64x48.pth")
TRAINED_INPUT = (48, 64)


@pytest.fixture(scope="module")
def trained(data_dir):
    experiment = pose.load_config(data_dir / "trained" / "synthetic_w16_64x48.yaml")
    model = pose.build_model(experiment)
    pose.load_weights(model, data_dir / "trained" / "synthetic_w16_64x48.pth")
    return experiment, model.eval()


def test_unknown_backend_lists_the_choices():
    with pytest.raises(ValueError, match="unknown pose backend 'tensorrt'") as error:
        backends.make_runtime("tensorrt", None, input_size=(48, 64), weights_id="x")
    for name in ("auto", "torch", "torch-compile", "onnxruntime-int8"):
        assert name in str(error.value)


def test_bf16_is_refused_with_the_reason_on_a_cpu_without_bf16(tmp_path, monkeypatch, trained):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    monkeypatch.setattr(hardware, "CPUINFO", cpuinfo)
    for name in ("bf16", "torch-compile-bf16"):
        with pytest.raises(backends.BackendUnavailable, match="avx512_bf16 or amx_bf16") as error:
            backends.make_runtime(name, trained[1], device="cpu", input_size=TRAINED_INPUT, weights_id="x",
                                  cache_dir=tmp_path)
        assert "slower than fp32" in str(error.value)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    assert hardware.bf16_refusal("cpu") is None


def test_a_measured_choice_is_not_reused_on_a_cpu_with_other_vector_units(tmp_path, monkeypatch):
    # Same model name and core count, one with AVX512-VNNI (int8 fast) and one AVX2 only: different choices.
    ids = []
    for flags in ("fpu avx2 avx512f avx512_vnni", "fpu avx2"):
        cpuinfo = tmp_path / f"cpuinfo-{len(ids)}"
        cpuinfo.write_text(f"model name\t: AMD EPYC\nflags\t\t: {flags}\n")
        monkeypatch.setattr(hardware, "CPUINFO", cpuinfo)
        ids.append(hardware.machine_id("cpu"))
    assert ids[0] != ids[1] and all("AMD EPYC" in machine for machine in ids)


def test_int8_is_skipped_only_on_cpus_without_int8_dot_products():
    assert hardware.int8_skip_reason("cpu", frozenset({"avx2", "avx512_vnni"})) is None
    assert hardware.int8_skip_reason("cuda:0", frozenset()) is None
    assert "no int8 dot products" in hardware.int8_skip_reason("cpu", frozenset({"avx2"}))
    assert hardware.auto_candidates("cpu", frozenset({"avx2"}))[-1] == "onnxruntime-int8"  # tried last there


def test_fp16_is_refused_on_the_cpu(trained):
    with pytest.raises(backends.BackendUnavailable, match="CUDA only"):
        backends.make_runtime("fp16", trained[1], device="cpu", input_size=TRAINED_INPUT, weights_id="x")


def test_weights_id_changes_with_the_weights_and_the_network_config(tmp_path, data_dir):
    weights = data_dir / "trained" / "synthetic_w16_64x48.pth"
    config = data_dir / "trained" / "synthetic_w16_64x48.yaml"
    same = weights_id(weights, config)
    assert weights_id(weights, config) == same
    changed = tmp_path / "changed.pth"
    changed.write_bytes(weights.read_bytes() + b"\0")
    assert weights_id(changed, config) != same
    assert weights_id(weights, TINY_CONFIG) != same
    # Only the network section counts: a training setting does not invalidate compiled artifacts.
    recipe = config.read_text().replace("END_EPOCH: 10", "END_EPOCH: 11")
    (tmp_path / "recipe.yaml").write_text(recipe)
    assert weights_id(weights, tmp_path / "recipe.yaml") == same


def test_artifact_key_changes_with_backend_batch_shape_and_builder():
    key = artifact_key("abc", "torch-compile-fp32", (16, 3, 256, 192), torch="2.14.1")
    assert key.startswith("torch-compile-fp32-")
    assert artifact_key("abc", "torch-compile-fp32", (16, 3, 256, 192), torch="2.14.1") == key
    assert artifact_key("abd", "torch-compile-fp32", (16, 3, 256, 192), torch="2.14.1") != key
    assert artifact_key("abc", "torch-compile-fp32", (8, 3, 256, 192), torch="2.14.1") != key
    assert artifact_key("abc", "torch-compile-fp32", (16, 3, 384, 288), torch="2.14.1") != key
    assert artifact_key("abc", "torch-compile-bf16", (16, 3, 256, 192), torch="2.14.1") != key
    assert artifact_key("abc", "torch-compile-fp32", (16, 3, 256, 192), torch="2.15.0") != key


def test_the_cache_folder_follows_hrtrack_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HRTRACK_CACHE", str(tmp_path))
    assert backends.default_cache_dir() == tmp_path / "backends"


def test_agreement_counts_displacements():
    reference = np.zeros((2, 3, 2), np.float32)
    moved = reference.copy()
    moved[0, 0] = (3.0, 4.0)  # 5 px off: one keypoint of six
    metrics = agreement(reference, moved)
    assert metrics["mean_px"] == pytest.approx(5 / 6)
    assert metrics["max_px"] == pytest.approx(5.0)
    assert metrics["within_2px"] == pytest.approx(5 / 6)
    assert "oks_mean" not in metrics  # without the people's sizes there is no OKS (tests/test_backend_auto.py)


def test_reference_crops_decode_to_input_pixels(trained):
    crops = reference_crops(TRAINED_INPUT)
    # the 12 people of tests/data/coco_mini with labeled keypoints, then their mirror images
    assert crops.shape == (24, 3, 64, 48)
    np.testing.assert_array_equal(crops[12:], crops[:12, ..., ::-1])
    heatmaps = TorchRuntime(trained[1])(crops)
    xy = keypoints_from_heatmaps(heatmaps, TRAINED_INPUT)
    assert xy.shape == (24, 17, 2)
    assert 0 <= xy[..., 0].min() and xy[..., 0].max() < 48 and xy[..., 1].max() < 64


def test_an_installed_copy_without_tests_data_uses_the_packaged_reference_people(tmp_path, monkeypatch):
    from pose.backends import agreement as agreement_module

    monkeypatch.setattr(agreement_module, "REFERENCE_DIR", tmp_path / "no_checkout")
    assert agreement_module.reference_folder()[0] == agreement_module.PACKAGED_REFERENCE_DIR
    crops = agreement_module.reference_crops(TRAINED_INPUT)
    assert crops.shape == (14, 3, 64, 48)  # the 7 hand-boxed people of the vtest frame, then their mirror images
    np.testing.assert_array_equal(crops[7:], crops[:7, ..., ::-1])
    assert crops.std(axis=(1, 2, 3)).min() > 0.3  # real image content, normalised


def test_an_eager_copy_leaves_the_reference_network_unchanged(trained):
    _, model = trained
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    import torch

    clone = backends.clone_network(model).to(dtype=torch.bfloat16)
    assert clone.config is model.config
    for name, tensor in model.state_dict().items():
        assert tensor.dtype == before[name].dtype
        assert (tensor == before[name]).all()


@pytest.mark.slow
def test_torch_compile_agrees_with_eager_on_the_trained_network(trained, tmp_path):
    experiment, model = trained
    crops = reference_crops(TRAINED_INPUT)
    reference = TorchRuntime(model)(crops)
    runtime = backends.make_runtime("torch-compile", model, device="cpu", max_batch=16, input_size=TRAINED_INPUT,
                                    weights_id=weights_id(TRAINED_WEIGHTS, experiment), cache_dir=tmp_path)
    heatmaps = runtime(crops)  # 28 crops: chunks of 16 and 12 through the dynamic-batch package
    np.testing.assert_allclose(heatmaps, reference, atol=1e-4)
    metrics = agreement(keypoints_from_heatmaps(reference, TRAINED_INPUT), keypoints_from_heatmaps(heatmaps, TRAINED_INPUT))
    assert metrics["max_px"] < 0.01, metrics
    np.testing.assert_allclose(runtime(crops[:1]), reference[:1], atol=1e-4)  # batch 1
    # Building it left the caller's network as it was (the eager reference, NCHW).
    assert all(p.is_contiguous() for p in model.parameters())
    # A second start loads the cached package instead of compiling again.
    packages = list(tmp_path.rglob("model.pt2"))
    assert len(packages) == 1
    again = backends.make_runtime("torch-compile", model, device="cpu", max_batch=16, input_size=TRAINED_INPUT,
                                  weights_id=weights_id(TRAINED_WEIGHTS, experiment), cache_dir=tmp_path)
    assert again.package == packages[0]
    np.testing.assert_allclose(again(crops[:5]), reference[:5], atol=1e-4)


def test_live_commands_default_to_auto_and_scoring_commands_to_eager_fp32(monkeypatch):
    import argparse

    import main as entry
    from cli import options

    assert options.BACKEND_CHOICES == tuple(backends.BACKENDS)
    monkeypatch.delenv("HRTRACK_BACKEND", raising=False)
    parser = argparse.ArgumentParser()
    options.add_pose_arguments(parser, live=True)
    assert parser.parse_args([]).backend == "auto"
    assert parser.parse_args(["--backend", "onnxruntime-int8"]).backend == "onnxruntime-int8"
    assert "OKS" in parser.format_help()
    defaults = {}
    for command in (["track", "in.mp4"], ["gui"], ["pose", "in.jpg", "--boxes", "0,0,9,9"], ["coco", "eval", "--ann", "a.json"],
                    ["posetrack", "run", "--data", "d", "--out", "o"]):
        defaults[command[0]] = entry.build_parser(command[0]).parse_args(command).backend
    assert defaults == {"track": "auto", "gui": "auto", "pose": "torch", "coco": "torch", "posetrack": "torch"}
    monkeypatch.setenv("HRTRACK_BACKEND", "onnxruntime")
    assert entry.build_parser("coco").parse_args(["coco", "eval", "--ann", "a.json"]).backend == "onnxruntime"
