"""Official HRNet experiment configs (the yacs schema of lib/config/default.py) as typed data.

`load_config` accepts an official experiment YAML path, a nested dict in the
same schema, a registry name such as ``"coco/w32_256x192"`` (see
``configs/README.md``) or an `ExperimentConfig` (returned unchanged).

Rules, as in the official yacs config:
- every key outside ``MODEL.EXTRA`` must be one of the official keys; an unknown
  key is an error naming the source and the dotted key;
- a missing key takes the official default of ``lib/config/default.py``;
- ``MODEL.EXTRA`` is free-form; the HRNet stage specs (``STAGE2``..``STAGE4``)
  are parsed into `StageSpec`, any other EXTRA key is kept in `HRNetExtra.other`.

Sizes are (width, height) pixels, exactly as written in the YAML files.

Field names are the official keys lower-cased (`num_joints`, `in_vis_thre`,
`oks_thre`, ...) so that every key maps to one field by rule; they are the
official vocabulary and stay in this reader. Code outside it gives them plain
names (keypoints, score and NMS thresholds) where it takes them over.
"""

from __future__ import annotations

import ast
import logging
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
# Official experiment file names end with the training recipe; registry names drop it.
_RECIPE_SUFFIX = "_adam_lr1e-3"
BLOCK_TYPES = ("BASIC", "BOTTLENECK")


def _key(name: str) -> dict[str, str]:
    """Field metadata: the YAML key when it is not simply the upper-cased field name."""
    return {"key": name}


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class CudnnConfig:
    benchmark: bool = True
    deterministic: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class StageSpec:
    """One HRNet stage (``MODEL.EXTRA.STAGEn``): `num_modules` HighResolutionModules
    with `num_branches` parallel branches; branch k has `num_blocks[k]` blocks of
    `block` type and width `num_channels[k]` (before the block expansion)."""

    num_modules: int
    num_branches: int
    block: str
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]
    # Stored but never read by the official code: fusion is always a sum.
    fuse_method: str = "SUM"


@dataclass(frozen=True)
class HRNetExtra:
    """``MODEL.EXTRA`` of a pose_hrnet experiment."""

    stage2: StageSpec
    stage3: StageSpec
    stage4: StageSpec
    final_conv_kernel: int = 1
    pretrained_layers: tuple[str, ...] = ()
    # Free-form EXTRA keys we do not interpret (yacs allows new keys here).
    other: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))

    @property
    def stages(self) -> tuple[StageSpec, StageSpec, StageSpec]:
        return (self.stage2, self.stage3, self.stage4)

    @property
    def size_multiple(self) -> int:
        """Input width and height must be multiples of this: the lowest-resolution
        branch runs at 1/(4*2^(branches-1)) and is upsampled back with nearest
        neighbour, so every stride-2 step must divide exactly (32 for 4 branches)."""
        return 4 * 2 ** (max(stage.num_branches for stage in self.stages) - 1)


@dataclass(frozen=True)
class ModelConfig:
    extra: HRNetExtra
    name: str = "pose_hrnet"
    init_weights: bool = True
    pretrained: str = ""
    num_joints: int = 17
    tag_per_joint: bool = True
    target_type: str = "gaussian"
    image_size: tuple[int, int] = (256, 256)  # (width, height) px
    heatmap_size: tuple[int, int] = (64, 64)  # (width, height) heatmap px
    sigma: float = 2.0  # Gaussian target sigma, heatmap px


@dataclass(frozen=True)
class LossConfig:
    use_ohkm: bool = False
    topk: int = 8
    use_target_weight: bool = True
    use_different_joints_weight: bool = False


@dataclass(frozen=True)
class DatasetConfig:
    root: str = ""
    name: str = field(default="mpii", metadata=_key("DATASET"))
    train_set: str = "train"
    test_set: str = "valid"
    data_format: str = "jpg"
    hybrid_joints_type: str = ""
    select_data: bool = False
    flip: bool = True
    scale_factor: float = 0.25
    rot_factor: float = 30.0  # degrees
    prob_half_body: float = 0.0
    num_joints_half_body: int = 8
    color_rgb: bool = False


@dataclass(frozen=True)
class TrainConfig:
    lr_factor: float = 0.1
    lr_step: tuple[int, ...] = (90, 110)
    lr: float = 0.001
    optimizer: str = "adam"
    momentum: float = 0.9
    wd: float = 0.0001
    nesterov: bool = False
    gamma1: float = 0.99
    gamma2: float = 0.0
    begin_epoch: int = 0
    end_epoch: int = 140
    resume: bool = False
    checkpoint: str = ""
    batch_size_per_gpu: int = 32
    shuffle: bool = True


@dataclass(frozen=True)
class TestConfig:
    batch_size_per_gpu: int = 32
    flip_test: bool = False
    post_process: bool = False
    shift_heatmap: bool = False
    use_gt_bbox: bool = False
    image_thre: float = 0.1
    nms_thre: float = 0.6
    soft_nms: bool = False
    oks_thre: float = 0.5
    in_vis_thre: float = 0.0
    coco_bbox_file: str = ""
    bbox_thre: float = 1.0
    model_file: str = ""


@dataclass(frozen=True)
class DebugConfig:
    debug: bool = False
    save_batch_images_gt: bool = False
    save_batch_images_pred: bool = False
    save_heatmaps_gt: bool = False
    save_heatmaps_pred: bool = False


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole official experiment file. `source` names where it came from
    (file path, ``"<dict>"`` or a registry name) for error messages."""

    model: ModelConfig
    output_dir: str = ""
    log_dir: str = ""
    data_dir: str = ""
    gpus: tuple[int, ...] = (0,)
    workers: int = 4
    print_freq: int = 20
    auto_resume: bool = False
    pin_memory: bool = True
    rank: int = 0
    cudnn: CudnnConfig = CudnnConfig()
    loss: LossConfig = LossConfig()
    dataset: DatasetConfig = DatasetConfig()
    train: TrainConfig = TrainConfig()
    test: TestConfig = TestConfig()
    debug: DebugConfig = DebugConfig()
    source: str = field(default="<dict>", metadata={"key": None}, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The official-schema nested dict (upper-case keys); `load_config` of it
        gives back an equal config."""
        return _to_dict(self)


# --------------------------------------------------------------------------- loading


def _yaml_key(f) -> str | None:
    return f.metadata.get("key", f.name.upper())


def _fail(source: str, key: str, problem: str) -> ValueError:
    return ValueError(f"{source}: {key}: {problem}")


def _coerce(value: Any, hint: Any, source: str, key: str) -> Any:
    """Check `value` against the annotation `hint` the way yacs does (with the
    one leniency that an int is accepted where a float is expected)."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(source, key, f"expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, key, f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(source, key, f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _fail(source, key, f"expected a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            # yacs literal-evals strings, which is how "GPUS: (0,1,2,3)" becomes a tuple.
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise _fail(source, key, f"expected a list, got {value!r}") from None
            if isinstance(value, int):
                value = (value,)
        if not isinstance(value, (list, tuple)):
            raise _fail(source, key, f"expected a list, got {value!r}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(item, args[0], source, f"{key}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise _fail(source, key, f"expected {len(args)} values, got {list(value)!r}")
        return tuple(_coerce(item, arg, source, f"{key}[{i}]") for i, (item, arg) in enumerate(zip(value, args)))
    raise TypeError(f"unsupported schema annotation {hint!r}")


def _build_section(cls, raw: Any, source: str, prefix: str, special: Mapping[str, Any] | None = None):
    """Build dataclass `cls` from the mapping `raw`, defaults for missing keys."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _fail(source, prefix or "<root>", f"expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    by_key = {_yaml_key(f): f for f in fields(cls) if _yaml_key(f) is not None}
    for key in raw:
        if key not in by_key:
            where = f"{prefix}.{key}" if prefix else str(key)
            known = ", ".join(sorted(by_key))
            raise _fail(source, where, f"unknown key (known keys here: {known})")
    values: dict[str, Any] = dict(special or {})
    for key, f in by_key.items():
        if f.name in values or key not in raw:
            continue
        where = f"{prefix}.{key}" if prefix else key
        hint = hints[f.name]
        if is_dataclass(hint):
            values[f.name] = _build_section(hint, raw[key], source, where)
        else:
            values[f.name] = _coerce(raw[key], hint, source, where)
    return cls(**values)


_STAGE_KEYS = ("NUM_MODULES", "NUM_BRANCHES", "BLOCK", "NUM_BLOCKS", "NUM_CHANNELS", "FUSE_METHOD")


def _build_stage(raw: Any, source: str, prefix: str) -> StageSpec:
    if not isinstance(raw, Mapping):
        raise _fail(source, prefix, f"missing or not a mapping (got {raw!r}); a pose_hrnet stage needs {', '.join(_STAGE_KEYS)}")
    for key in _STAGE_KEYS[:-1]:
        if key not in raw:
            raise _fail(source, f"{prefix}.{key}", "missing")
    extra_keys = sorted(set(raw) - set(_STAGE_KEYS))
    if extra_keys:
        logger.warning("%s: %s: ignoring keys the network does not use: %s", source, prefix, ", ".join(map(str, extra_keys)))
    stage = StageSpec(
        num_modules=_coerce(raw["NUM_MODULES"], int, source, f"{prefix}.NUM_MODULES"),
        num_branches=_coerce(raw["NUM_BRANCHES"], int, source, f"{prefix}.NUM_BRANCHES"),
        block=_coerce(raw["BLOCK"], str, source, f"{prefix}.BLOCK"),
        num_blocks=_coerce(raw["NUM_BLOCKS"], tuple[int, ...], source, f"{prefix}.NUM_BLOCKS"),
        num_channels=_coerce(raw["NUM_CHANNELS"], tuple[int, ...], source, f"{prefix}.NUM_CHANNELS"),
        fuse_method=_coerce(raw.get("FUSE_METHOD", "SUM"), str, source, f"{prefix}.FUSE_METHOD"),
    )
    if stage.num_modules < 1:
        raise _fail(source, f"{prefix}.NUM_MODULES", f"must be at least 1, got {stage.num_modules}")
    if stage.num_branches < 1:
        raise _fail(source, f"{prefix}.NUM_BRANCHES", f"must be at least 1, got {stage.num_branches}")
    if stage.block not in BLOCK_TYPES:
        raise _fail(source, f"{prefix}.BLOCK", f"must be one of {', '.join(BLOCK_TYPES)}, got {stage.block!r}")
    for name, values in (("NUM_BLOCKS", stage.num_blocks), ("NUM_CHANNELS", stage.num_channels)):
        if len(values) != stage.num_branches:
            raise _fail(
                source, f"{prefix}.{name}",
                f"has {len(values)} entries but NUM_BRANCHES is {stage.num_branches}",
            )
        if any(v < 1 for v in values):
            raise _fail(source, f"{prefix}.{name}", f"entries must be positive, got {list(values)}")
    return stage


def _build_extra(raw: Any, source: str) -> HRNetExtra:
    prefix = "MODEL.EXTRA"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _fail(source, prefix, f"expected a mapping, got {raw!r}")
    stages = [_build_stage(raw.get(f"STAGE{n}"), source, f"{prefix}.STAGE{n}") for n in (2, 3, 4)]
    kernel = _coerce(raw.get("FINAL_CONV_KERNEL", 1), int, source, f"{prefix}.FINAL_CONV_KERNEL")
    if kernel not in (1, 3):
        # The official head pads 1 for kernel 3 and 0 otherwise; other kernels shrink the heatmap.
        raise _fail(source, f"{prefix}.FINAL_CONV_KERNEL", f"must be 1 or 3, got {kernel}")
    layers = _coerce(raw.get("PRETRAINED_LAYERS", ()), tuple[str, ...], source, f"{prefix}.PRETRAINED_LAYERS")
    known = {"STAGE2", "STAGE3", "STAGE4", "FINAL_CONV_KERNEL", "PRETRAINED_LAYERS"}
    other = types.MappingProxyType({k: v for k, v in raw.items() if k not in known})
    return HRNetExtra(stages[0], stages[1], stages[2], kernel, layers, other)


def _validate(config: ExperimentConfig) -> None:
    source, model = config.source, config.model
    if model.name != "pose_hrnet":
        raise _fail(source, "MODEL.NAME", f"only 'pose_hrnet' is supported, got {model.name!r}")
    if model.num_joints < 1:
        raise _fail(source, "MODEL.NUM_JOINTS", f"must be positive, got {model.num_joints}")
    multiple = model.extra.size_multiple
    if any(v < 1 or v % multiple for v in model.image_size):
        raise _fail(
            source, "MODEL.IMAGE_SIZE",
            f"{list(model.image_size)} (width, height) must be positive multiples of {multiple}: "
            f"the lowest-resolution branch is upsampled back by nearest neighbour",
        )
    if any(v < 1 for v in model.heatmap_size):
        raise _fail(source, "MODEL.HEATMAP_SIZE", f"must be positive, got {list(model.heatmap_size)}")
    expected = (model.image_size[0] // 4, model.image_size[1] // 4)
    if tuple(model.heatmap_size) != expected:
        # The official code does not check this, but the network always outputs 1/4 of the input.
        logger.warning(
            "%s: MODEL.HEATMAP_SIZE %s is not MODEL.IMAGE_SIZE/4 %s; the network output is always 1/4 of the input",
            source, list(model.heatmap_size), list(expected),
        )
    if config.dataset.name not in ("coco", "posetrack", "mpii"):
        logger.warning("%s: DATASET.DATASET %r is not 'coco', 'posetrack' or 'mpii'", source, config.dataset.name)


def config_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> ExperimentConfig:
    """Build a validated `ExperimentConfig` from an official-schema nested dict."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    model_raw = raw.get("MODEL") or {}
    if not isinstance(model_raw, Mapping):
        raise _fail(source, "MODEL", f"expected a mapping, got {model_raw!r}")
    extra = _build_extra(model_raw.get("EXTRA"), source)
    model = _build_section(ModelConfig, model_raw, source, "MODEL", special={"extra": extra})
    config = _build_section(ExperimentConfig, raw, source, "", special={"model": model, "source": source})
    _validate(config)
    return config


def _resolve_name(name: str) -> Path | None:
    """Registry name ``<dataset>/<experiment>`` -> ``configs/<dataset>/hrnet/<experiment>[_adam_lr1e-3].yaml``."""
    parts = name.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        return None
    dataset, stem = parts
    for candidate in (stem, stem + _RECIPE_SUFFIX):
        path = CONFIGS_DIR / dataset / "hrnet" / f"{candidate}.yaml"
        if path.is_file():
            return path
    return None


def list_config_names() -> list[str]:
    """Registry names of the bundled experiment files, e.g. ``coco/w32_256x192``."""
    names = []
    for path in sorted(CONFIGS_DIR.glob("*/hrnet/*.yaml")):
        stem = path.stem.removesuffix(_RECIPE_SUFFIX)
        names.append(f"{path.parent.parent.name}/{stem}")
    return names


def config_path(name_or_path: str | Path) -> Path:
    """The YAML file behind a registry name or a path (FileNotFoundError naming it)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"experiment config {str(name_or_path)!r} does not exist")
        return path
    resolved = _resolve_name(str(name_or_path))
    if resolved is None:
        raise FileNotFoundError(
            f"{str(name_or_path)!r} is neither a YAML file nor a config name; "
            f"known names: {', '.join(list_config_names())}"
        )
    return resolved


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any] | Sequence[str], source: str) -> None:
    """yacs merge_from_list: dotted keys, values as YAML scalars when given as strings."""
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            key, sep, text = str(item).partition("=")
            if not sep:
                raise ValueError(f"{source}: override {item!r} must look like KEY=VALUE (e.g. TEST.FLIP_TEST=false)")
            items.append((key.strip(), yaml.safe_load(text)))
    for key, value in items:
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise _fail(source, key, "override goes below a value that is not a mapping")
            node = child
        node[leaf] = value


def _deep_copy(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return {k: _deep_copy(v) for k, v in raw.items()}
    if isinstance(raw, (list, tuple)):
        return [_deep_copy(v) for v in raw]
    return raw


def load_config(
    config: str | Path | Mapping[str, Any] | ExperimentConfig,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
) -> ExperimentConfig:
    """Load an official-schema experiment.

    config: a YAML path, a registry name (``"coco/w32_256x192"``, see
        `list_config_names`), an official-schema dict, or an `ExperimentConfig`.
    overrides: dotted keys as a dict ``{"TEST.FLIP_TEST": False}`` or a list of
        ``"TEST.FLIP_TEST=false"`` strings (like yacs ``merge_from_list``).

    Raises FileNotFoundError for a missing file or unknown name and ValueError,
    naming the source and the dotted key, for unknown keys, wrong types and
    inconsistent stage specs.
    """
    if isinstance(config, ExperimentConfig):
        if not overrides:
            return config
        return _reload(config, overrides)
    if isinstance(config, Mapping):
        raw, source = _deep_copy(config), "<dict>"
    else:
        path = config_path(config)
        source = str(path)
        try:
            with open(path, encoding="utf-8") as stream:
                raw = yaml.safe_load(stream)
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML: {error}") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    if overrides:
        _apply_overrides(raw, overrides, source)
    return config_from_dict(raw, source)


def _reload(config: ExperimentConfig, overrides: Mapping[str, Any] | Sequence[str]) -> ExperimentConfig:
    raw = _to_dict(config)
    _apply_overrides(raw, overrides, config.source)
    return config_from_dict(raw, config.source)


# --------------------------------------------------------------------------- dumping


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _stage_dict(stage: StageSpec) -> dict[str, Any]:
    return {
        "NUM_MODULES": stage.num_modules,
        "NUM_BRANCHES": stage.num_branches,
        "BLOCK": stage.block,
        "NUM_BLOCKS": list(stage.num_blocks),
        "NUM_CHANNELS": list(stage.num_channels),
        "FUSE_METHOD": stage.fuse_method,
    }


def _to_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, HRNetExtra):
        out = {f"STAGE{n}": _stage_dict(s) for n, s in zip((2, 3, 4), obj.stages)}
        out["FINAL_CONV_KERNEL"] = obj.final_conv_kernel
        out["PRETRAINED_LAYERS"] = list(obj.pretrained_layers)
        out.update(_plain(dict(obj.other)))
        return out
    out = {}
    for f in fields(obj):
        key = _yaml_key(f)
        if key is None:
            continue
        value = getattr(obj, f.name)
        out[key] = _to_dict(value) if is_dataclass(value) else _plain(value)
    return out
