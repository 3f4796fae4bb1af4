"""Official-schema experiment configs: loading, defaults, names, validation."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import yaml

from pose.config import CONFIGS_DIR, ExperimentConfig, list_config_names, load_config

# FACTS section 1: widths, input (w, h), heatmap (w, h), sigma, batch/GPU, joints.
OFFICIAL = {
    "coco/w32_256x192": ((32, 64, 128, 256), (192, 256), (48, 64), 2.0, 32, 17),
    "coco/w32_384x288": ((32, 64, 128, 256), (288, 384), (72, 96), 3.0, 32, 17),
    "coco/w48_256x192": ((48, 96, 192, 384), (192, 256), (48, 64), 2.0, 32, 17),
    "coco/w48_384x288": ((48, 96, 192, 384), (288, 384), (72, 96), 3.0, 24, 17),
    "mpii/w32_256x256": ((32, 64, 128, 256), (256, 256), (64, 64), 2.0, 32, 16),
    "mpii/w48_256x256": ((48, 96, 192, 384), (256, 256), (64, 64), 2.0, 32, 16),
}


def _tiny_raw(hrnet_reference_dir) -> dict:
    with open(hrnet_reference_dir / "dev_tiny.yaml", encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def _write(tmp_path, raw: dict, name: str = "exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_registry_lists_the_six_official_experiments():
    assert sorted(list_config_names()) == sorted(OFFICIAL)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_experiment_loads_unchanged(name):
    widths, image_size, heatmap_size, sigma, batch, joints = OFFICIAL[name]
    config = load_config(name)
    assert isinstance(config, ExperimentConfig)
    extra = config.model.extra
    assert extra.stage4.num_channels == widths
    assert extra.stage2.num_channels == widths[:2] and extra.stage3.num_channels == widths[:3]
    assert [s.num_modules for s in extra.stages] == [1, 4, 3]
    assert [s.num_blocks for s in extra.stages] == [(4,) * 2, (4,) * 3, (4,) * 4]
    assert all(s.block == "BASIC" for s in extra.stages)
    assert extra.final_conv_kernel == 1
    assert extra.pretrained_layers[0] == "conv1" and "final_layer" not in extra.pretrained_layers
    assert config.model.image_size == image_size and config.model.heatmap_size == heatmap_size
    assert config.model.sigma == sigma and config.model.num_joints == joints
    assert config.train.batch_size_per_gpu == batch
    assert config.gpus == (0, 1, 2, 3)  # "(0,1,2,3)" is a string in YAML; yacs literal-evals it
    assert config.dataset.name == name.split("/")[0]
    assert config.dataset.color_rgb is True
    assert config.test.flip_test and config.test.post_process and config.test.shift_heatmap
    assert config.train.lr_step == (170, 200) and config.train.end_epoch == 210


def test_coco_test_protocol_values():
    test = load_config("coco/w48_384x288").test
    assert test.in_vis_thre == 0.2 and test.oks_thre == 0.9 and test.image_thre == 0.0
    assert test.nms_thre == 1.0 and test.soft_nms is False and test.use_gt_bbox is True
    assert test.coco_bbox_file.endswith("COCO_val2017_detections_AP_H_56_person.json")


def test_missing_keys_take_the_official_yacs_defaults():
    # MPII files leave out the COCO test keys: they come from lib/config/default.py.
    test = load_config("mpii/w32_256x256").test
    assert (test.use_gt_bbox, test.oks_thre, test.in_vis_thre, test.image_thre, test.nms_thre) == (False, 0.5, 0.0, 0.1, 0.6)
    assert test.coco_bbox_file == "" and test.soft_nms is False


def test_minimal_dict_gets_defaults(hrnet_reference_dir):
    extra = _tiny_raw(hrnet_reference_dir)["MODEL"]["EXTRA"]
    config = load_config({"MODEL": {"EXTRA": extra}})
    assert config.source == "<dict>"
    assert config.model.image_size == (256, 256) and config.model.heatmap_size == (64, 64)
    assert config.model.num_joints == 17 and config.dataset.name == "mpii"
    assert config.dataset.color_rgb is False and config.test.flip_test is False
    assert config.loss.use_target_weight is True and config.loss.topk == 8
    assert config.train.lr_step == (90, 110) and config.cudnn.benchmark is True


def test_name_path_and_full_stem_give_the_same_config():
    by_name = load_config("coco/w32_256x192")
    by_stem = load_config("coco/w32_256x192_adam_lr1e-3")
    by_path = load_config(CONFIGS_DIR / "coco" / "hrnet" / "w32_256x192_adam_lr1e-3.yaml")
    assert by_name == by_stem == by_path
    assert by_name.source.endswith("w32_256x192_adam_lr1e-3.yaml")
    assert load_config(by_name) is by_name


def test_dev_tiny_config(hrnet_reference_dir):
    config = load_config(hrnet_reference_dir / "dev_tiny.yaml")
    assert config.model.image_size == (128, 160) and config.model.heatmap_size == (32, 40)
    assert config.model.extra.stage4.num_channels == (12, 24, 48, 96)
    assert config.model.extra.stage3.num_blocks == (2, 2, 2)
    assert config.model.extra.size_multiple == 32


def test_unknown_name_and_missing_file():
    with pytest.raises(FileNotFoundError, match="coco/w32_256x192"):  # the message lists known names
        load_config("coco/w99_1x1")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config("nope.yaml")


def test_round_trip_through_dict():
    config = load_config("coco/w48_256x192")
    assert load_config(config.to_dict()) == config


def test_config_is_frozen():
    config = load_config("coco/w32_256x192")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model.num_joints = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("section", "key"),
    [("TEST", "FLIP_TST"), ("MODEL", "NUM_JOINT"), (None, "GPU"), ("DATASET", "COLOR_BGR")],
)
def test_unknown_key_is_an_error_naming_file_and_key(tmp_path, hrnet_reference_dir, section, key):
    raw = _tiny_raw(hrnet_reference_dir)
    (raw[section] if section else raw)[key] = 1
    path = _write(tmp_path, raw)
    dotted = f"{section}.{key}" if section else key
    with pytest.raises(ValueError, match="unknown key") as info:
        load_config(path)
    assert str(path) in str(info.value) and dotted in str(info.value)


def test_model_extra_is_free_form(hrnet_reference_dir):
    raw = _tiny_raw(hrnet_reference_dir)
    raw["MODEL"]["EXTRA"]["MY_NOTE"] = "kept"
    config = load_config(raw)
    assert config.model.extra.other["MY_NOTE"] == "kept"
    assert config.to_dict()["MODEL"]["EXTRA"]["MY_NOTE"] == "kept"


@pytest.mark.parametrize(
    ("edit", "key", "problem"),
    [
        (lambda r: r["MODEL"]["EXTRA"]["STAGE3"].update(NUM_BRANCHES=4), "MODEL.EXTRA.STAGE3.NUM_BLOCKS", "NUM_BRANCHES is 4"),
        (lambda r: r["MODEL"]["EXTRA"]["STAGE2"].update(NUM_CHANNELS=[12]), "MODEL.EXTRA.STAGE2.NUM_CHANNELS", "1 entries"),
        (lambda r: r["MODEL"]["EXTRA"]["STAGE4"].update(BLOCK="BASICX"), "MODEL.EXTRA.STAGE4.BLOCK", "BASIC"),
        (lambda r: r["MODEL"]["EXTRA"].pop("STAGE3"), "MODEL.EXTRA.STAGE3", "missing"),
        (lambda r: r["MODEL"]["EXTRA"]["STAGE2"].pop("NUM_MODULES"), "MODEL.EXTRA.STAGE2.NUM_MODULES", "missing"),
        (lambda r: r["MODEL"].update(IMAGE_SIZE=[100, 160]), "MODEL.IMAGE_SIZE", "multiples of 32"),
        (lambda r: r["MODEL"].update(IMAGE_SIZE=[128]), "MODEL.IMAGE_SIZE", "expected 2 values"),
        (lambda r: r["MODEL"].update(NUM_JOINTS="17"), "MODEL.NUM_JOINTS", "integer"),
        (lambda r: r["TEST"].update(FLIP_TEST="yes"), "TEST.FLIP_TEST", "true/false"),
        (lambda r: r["MODEL"].update(NAME="pose_resnet"), "MODEL.NAME", "pose_hrnet"),
        (lambda r: r["MODEL"]["EXTRA"].update(FINAL_CONV_KERNEL=5), "MODEL.EXTRA.FINAL_CONV_KERNEL", "1 or 3"),
    ],
)
def test_invalid_values_name_file_and_key(tmp_path, hrnet_reference_dir, edit, key, problem):
    raw = _tiny_raw(hrnet_reference_dir)
    edit(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and key in message and problem in message


def test_int_is_accepted_for_a_float(hrnet_reference_dir):
    raw = _tiny_raw(hrnet_reference_dir)
    raw["TRAIN"]["LR"] = 1
    assert load_config(raw).train.lr == 1.0 and isinstance(load_config(raw).train.lr, float)


def test_heatmap_not_a_quarter_of_the_input_warns(hrnet_reference_dir, caplog):
    raw = _tiny_raw(hrnet_reference_dir)
    raw["MODEL"]["HEATMAP_SIZE"] = [64, 80]
    with caplog.at_level(logging.WARNING, logger="pose.config"):
        config = load_config(raw)
    assert config.model.heatmap_size == (64, 80)
    assert "HEATMAP_SIZE" in caplog.text


def test_size_multiple_follows_the_branch_count(hrnet_reference_dir):
    raw = _tiny_raw(hrnet_reference_dir)
    extra = raw["MODEL"]["EXTRA"]
    extra["STAGE4"] = dict(extra["STAGE3"])  # three branches at most: 1/16 is the lowest resolution
    raw["MODEL"]["IMAGE_SIZE"] = [144, 176]
    raw["MODEL"]["HEATMAP_SIZE"] = [36, 44]
    assert load_config(raw).model.extra.size_multiple == 16


def test_overrides_like_yacs_merge_from_list():
    config = load_config("coco/w32_256x192", overrides=["TEST.USE_GT_BBOX=false", "TEST.OKS_THRE=0.8"])
    assert config.test.use_gt_bbox is False and config.test.oks_thre == 0.8
    again = load_config(config, overrides={"TEST.FLIP_TEST": False})
    assert again.test.flip_test is False and again.test.use_gt_bbox is False
    with pytest.raises(ValueError, match="TEST.FLIP"):
        load_config("coco/w32_256x192", overrides=["TEST.FLIP=false"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load_config("coco/w32_256x192", overrides=["TEST.FLIP_TEST"])


def test_not_yaml_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="list.yaml"):
        load_config(path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("MODEL: [1, 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.yaml: not valid YAML"):
        load_config(broken)
