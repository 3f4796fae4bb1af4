"""Per-epoch training log: `log.csv` and `curve.png` (training loss and validation AP) next to the checkpoints."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from core.io import atomic_output

COLUMNS = ("epoch", "lr", "train_loss", "images_per_s", "val_metric", "val_value")


def write_csv(history: Sequence[dict], path: str | os.PathLike) -> Path:
    """One row per finished epoch (`val_*` empty when the epoch was not validated)."""
    path = Path(path)
    with atomic_output(path) as part, part.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        for row in history:
            writer.writerow({key: row.get(key, "") for key in COLUMNS})
    return path


def write_plot(history: Sequence[dict], path: str | os.PathLike) -> Path:
    """Training loss (left axis, log scale) and validation metric (right axis) per epoch."""
    import matplotlib  # noqa: PLC0415 -- only needed when a plot is written

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415 - after the Agg backend is chosen

    path = Path(path)
    figure, loss_axis = pyplot.subplots(figsize=(6, 3.5), dpi=100)
    try:
        epochs = [row["epoch"] for row in history]
        loss_axis.plot(epochs, [row["train_loss"] for row in history], "o-", color="tab:blue", label="training loss")
        loss_axis.set_xlabel("epoch")
        loss_axis.set_ylabel("training loss (JointsMSE)", color="tab:blue")
        if all(row["train_loss"] > 0 for row in history):
            loss_axis.set_yscale("log")
        validated = [row for row in history if row.get("val_value") not in (None, "")]
        if validated:
            metric_axis = loss_axis.twinx()
            metric_axis.plot([row["epoch"] for row in validated], [row["val_value"] for row in validated],
                             "s-", color="tab:orange")
            metric_axis.set_ylabel(f"validation {validated[-1]['val_metric']}", color="tab:orange")
        figure.tight_layout()
        with atomic_output(path) as part:
            figure.savefig(part, format=path.suffix.lstrip(".") or "png")
    finally:
        pyplot.close(figure)
    return path
