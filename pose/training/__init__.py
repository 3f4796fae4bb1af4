"""Training and fine-tuning HRNet with the official recipe (lib/core/function.py, tools/train.py).

Modules, one job each:

- `layouts`: the keypoint layout a data set trains with (names, flip pairs,
  the half-body keypoint sets), from the built-in COCO / MPII tables, an
  annotation file's categories or a small YAML;
- `records`: annotation files to `PersonRecord`s (COCO through pycocotools,
  MPII in the official json format);
- `augment`: the official per-sample augmentation (half-body, scale,
  rotation, flip), drawn from an explicit random generator;
- `dataset`: a torch `Dataset` of crops, Gaussian targets and target weights;
- `checkpoint`: training state and flat official-name weights on disk;
- `logbook`: the per-epoch CSV log and PNG plot;
- `trainer`: the loop (Adam + MultiStepLR, mixed precision on CUDA, DDP under
  torchrun, validation injected as a callable, resume, best-checkpoint keeping).

Validation is not done here: this package may only import `pose` and `core`,
so the caller passes `validate(model, epoch) -> dict` (cli/train.py builds it
from evaluation.coco).
"""
