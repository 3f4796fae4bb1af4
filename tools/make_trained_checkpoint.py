"""Regenerate tests/data/trained/: a small HRNet trained on the synthetic stick-figure set.

    python tools/make_trained_checkpoint.py            # about 10-30 min on 2 busy CPU cores

Writes a seeded synthetic COCO-format keypoint set (evaluation.synthetic_keypoints)
to a temporary folder, trains tests/data/trained/synthetic_w16_64x48.yaml on it
with `main.py train` (the official recipe; only sizes, widths, batch size and
epoch count differ), and copies the best checkpoint (flat official key names),
the per-epoch log and the curve into tests/data/trained/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import main as entry  # noqa: E402
from evaluation.synthetic_keypoints import write_dataset  # noqa: E402

CONFIG = ROOT / "tests" / "data" / "trained" / "synthetic_w16_64x48.yaml"
TRAIN_IMAGES, VAL_IMAGES = 1024, 128
TRAIN_SEED, VAL_SEED, RUN_SEED = 1, 2, 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "trained")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        write_dataset(data, "train", TRAIN_IMAGES, TRAIN_SEED)
        write_dataset(data, "val", VAL_IMAGES, VAL_SEED)
        run = Path(folder) / "run"
        status = entry.main(["train", str(CONFIG), "--out", str(run), "--seed", str(RUN_SEED), "--val-every", "2",
                             "DATASET.ROOT", str(data), "TRAIN.END_EPOCH", str(args.epochs)])
        if status:
            return status
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "model_best.pth", args.out / "synthetic_w16_64x48.pth")
        shutil.copy(run / "log.csv", args.out / "log.csv")
        shutil.copy(run / "curve.png", args.out / "curve.png")
    print((args.out / "log.csv").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
