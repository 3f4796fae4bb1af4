"""`main.py train`: train or fine-tune HRNet with the official recipe, on one process or many (torchrun).

    # COCO in the official layout (DATASET.ROOT/annotations/person_keypoints_<SET>.json,
    # DATASET.ROOT/images/<SET>/), ImageNet backbone, validation every epoch
    main.py train coco/w32_256x192 --init hrnet_w32-36af842e.pth --out runs/w32 DATASET.ROOT data/coco/
    # continue a stopped run exactly where it stopped
    main.py train coco/w32_256x192 --resume runs/w32/checkpoint.pth --out runs/w32 DATASET.ROOT data/coco/
    # 4 GPUs (global batch = 4 x TRAIN.BATCH_SIZE_PER_GPU)
    torchrun --nproc_per_node 4 main.py train coco/w32_256x192 --device cuda --out runs/w32 ...
    # your own COCO-format keypoint set (keypoint names from its category, or --layout YAML)
    main.py train my.yaml --train-ann train.json --train-images imgs/ --val-ann val.json --val-images imgs/ \\
        MODEL.NUM_JOINTS 5 TRAIN.END_EPOCH 50

Trailing `KEY VALUE` pairs override the config in the official (yacs) style.
Writes checkpoint.pth (every epoch), model_best.pth, final_state.pth, log.csv
and curve.png into --out (rank 0 only). Validation is `main.py coco eval`'s
code on TEST_SET (ground-truth boxes when TEST.USE_GT_BBOX, else
TEST.COCO_BBOX_FILE), scored by the COCO AP. A COCO-format set with its own
keypoints is validated the same way with the OKS sigmas of its layout (the
--layout YAML's `sigmas`, else COCO's for COCO-named keypoints and COCO's mean
for the others; see pose.training.layouts); its keypoint category must have id 1
in the validation file. MPII trains without validation (its PCKh is `main.py mpii`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pose
from cli.options import positive_int
from detector import FileDetector, GroundTruthDetector
from evaluation.coco import CocoTestSettings, load_annotation, predict_coco, score_results
from pose.codec import HeatmapCodec
from pose.estimator import PoseEstimator
from pose.runtime import TorchRuntime
from pose.training.layouts import builtin_layout, load_layout_yaml
from pose.training.records import coco_records, keypoint_category, mpii_records

logger = logging.getLogger(__name__)
# main.py appends the words argparse leaves over (the trailing KEY VALUE pairs) to args.overrides.
TRAILING_ARGUMENTS = "overrides"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("config", metavar="CONFIG", help="official-schema experiment YAML or config name (coco/w32_256x192)")
    parser.add_argument("overrides", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. TRAIN.END_EPOCH 2")
    parser.add_argument("--out", metavar="DIR", default=None, help="output folder (default OUTPUT_DIR/<config name>)")
    parser.add_argument("--resume", metavar="CKPT", default=None, help="continue from this checkpoint.pth")
    parser.add_argument("--init", metavar="WEIGHTS", default=None,
                        help="ImageNet-pretrained (or any official-name) weights for MODEL.EXTRA.PRETRAINED_LAYERS")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (under torchrun: cuda = one GPU per process)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data order, augmentation and init (default 0)")
    parser.add_argument("--val-every", type=positive_int, default=1, metavar="N", help="validate every N epochs (default 1)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="mixed precision (default: on for CUDA)")
    parser.add_argument("--train-ann", metavar="JSON", help="training annotations (default: from DATASET.ROOT and TRAIN_SET)")
    parser.add_argument("--train-images", metavar="DIR", help="folder of the training images")
    parser.add_argument("--val-ann", metavar="JSON", help="validation annotations (default: from DATASET.ROOT and TEST_SET)")
    parser.add_argument("--val-images", metavar="DIR", help="folder of the validation images")
    parser.add_argument("--no-val", action="store_true", help="train without validation")
    parser.add_argument("--layout", metavar="YAML", help="keypoint layout (names, flip pairs, upper body) of a custom keypoint set")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_overrides(pairs: list[str]) -> list[str]:
    """`KEY VALUE KEY VALUE ...` (official style) to `pose.load_config`'s `KEY=VALUE` list."""
    if len(pairs) % 2:
        raise ValueError(f"overrides come in KEY VALUE pairs, got an odd count: {pairs}")
    return [f"{key}={value}" for key, value in zip(pairs[0::2], pairs[1::2])]


def data_paths(config, split: str, annotation: str | None, images: str | None) -> tuple[Path, Path]:
    """Annotation file and image folder of a split: the flags, else the official layout under DATASET.ROOT."""
    root = Path(config.dataset.root)
    if config.dataset.name == "mpii":
        default_ann, default_images = root / "annot" / f"{split}.json", root / "images"
    else:
        default_ann, default_images = root / "annotations" / f"person_keypoints_{split}.json", root / "images" / split
    return Path(annotation) if annotation else default_ann, Path(images) if images else default_images


def build_train_dataset(config, args):
    from pose.training.dataset import TopDownDataset  # noqa: PLC0415 - a torch Dataset: torch only when training

    annotation, images = data_paths(config, config.dataset.train_set, args.train_ann, args.train_images)
    width, height = config.model.image_size
    layout = load_layout_yaml(args.layout) if args.layout else None
    if config.dataset.name == "mpii":
        layout = layout or builtin_layout("mpii")
        records = mpii_records(annotation, images, layout.num_keypoints)
    else:
        records, layout = coco_records(annotation, images, width / height, layout)
    if not records:
        raise ValueError(f"{annotation}: no person with labelled keypoints to train on")
    return TopDownDataset(records, config, layout, train=True, seed=args.seed), layout


def make_coco_validator(config, annotation_path: Path, images_dir: Path, device: str, progress: bool, layout=None):
    """`validate(model, epoch) -> COCO stats` with `main.py coco eval`'s code (evaluation.coco).

    layout: the `KeypointLayout` trained on; None = the COCO 17. Any other layout is
    scored with its `oks_sigmas` (in the OKS-NMS and in COCOeval).
    """
    coco = builtin_layout("coco")
    layout = layout or coco
    annotation = load_annotation(annotation_path)
    category = keypoint_category(annotation, str(annotation_path))
    if int(category["id"]) != 1 or len(category["keypoints"]) != layout.num_keypoints:
        raise ValueError(f"{annotation_path}: validation needs a keypoint category with id 1 and "
                         f"{layout.num_keypoints} keypoints, found id {category['id']} with {len(category['keypoints'])}")
    settings = CocoTestSettings.from_config(config)
    if config.test.use_gt_bbox:
        boxes = GroundTruthDetector(annotation_path, official_cleaning=True)
    else:
        if not config.test.coco_bbox_file:
            raise ValueError(f"{config.source}: TEST.USE_GT_BBOX is false but TEST.COCO_BBOX_FILE is empty")
        boxes = FileDetector(config.test.coco_bbox_file, score_threshold=settings.box_score_threshold, sort_by_score=False)
    keypoints = layout.keypoint_set("coco" if layout == coco else "custom")
    # COCO itself keeps the official calls' built-in sigmas (None), bit for bit.
    sigmas = None if layout == coco else keypoints.sigmas
    codec = HeatmapCodec.from_config(config, keypoints.flip_pairs)

    def validate(model, epoch: int) -> dict[str, float]:
        estimator = PoseEstimator(TorchRuntime(model, device=device, exact=False), codec, keypoints,
                                  input_size=tuple(config.model.image_size), color_rgb=bool(config.dataset.color_rgb),
                                  flip_test=bool(config.test.flip_test), batch_size=config.test.batch_size_per_gpu)
        results = predict_coco(estimator, annotation, images_dir, boxes, settings, progress=progress, sigmas=sigmas)
        if not results:
            logger.warning("epoch %d: no keypoint results on %s", epoch, annotation_path)
            return {"AP": 0.0}
        return score_results(results, annotation, sigmas=sigmas).stats

    return validate


def run(args: argparse.Namespace) -> int:
    from pose.training.trainer import Trainer, TrainOptions  # noqa: PLC0415 - torch only when training

    try:
        config = pose.load_config(args.config, parse_overrides(args.overrides))
        dataset, layout = build_train_dataset(config, args)
        out = Path(args.out) if args.out else Path(config.output_dir or "output") / Path(config.source).stem
        validate = None
        if not args.no_val:
            if config.dataset.name == "mpii":
                logger.warning("MPII is validated by PCKh (`main.py mpii`), not here; training %s without it", config.source)
            else:
                annotation, images = data_paths(config, config.dataset.test_set, args.val_ann, args.val_images)
                validate = make_coco_validator(config, annotation, images, args.device, progress=not args.no_progress,
                                               layout=layout)
        options = TrainOptions(out_dir=out, device=args.device, seed=args.seed, val_every=args.val_every,
                               amp=args.amp, progress=not args.no_progress,
                               resume=Path(args.resume) if args.resume else None,
                               init_weights=Path(args.init) if args.init else None)
        trainer = Trainer(config, dataset, options, validate)
    except (ValueError, OSError) as error:
        logger.error("%s", error)
        return 2
    try:
        history = trainer.fit()
    finally:
        trainer.close()
    if trainer.context.is_main and history:
        last = history[-1]
        logger.info("done: %d epochs, last loss %.4e; files in %s", len(history), last["train_loss"], out)
    return 0
