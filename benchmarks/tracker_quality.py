"""Tracking quality per synthetic scenario and tracker option set (motmetrics).

Run: .venv/bin/python benchmarks/tracker_quality.py [--seeds 3] [--frames 150] [--plot docs/tracker_quality.png]

Prints a markdown table: MOTA and IDF1 averaged over the seeds, ID switches,
false positives and misses summed over them. Every scene is rendered, so the
"flow" option set gets real images (textured people on a textured background)
for Lucas-Kanade; the other option sets ignore the images. Saves a figure with
IDF1 and ID switches per scenario and one tracked frame.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker import PoseTracker, TrackerOptions  # noqa: E402
from evaluation.tracking import SceneMetrics, evaluate  # noqa: E402
from evaluation.scenes import SCENARIOS, make_scene  # noqa: E402

logger = logging.getLogger(__name__)

# COCO limbs, 0-based joint indices (for the example frame only).
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (0, 1), (0, 2), (1, 3), (2, 4))

OPTION_SETS = {
    "simple baseline (greedy OKS, 1 frame)": TrackerOptions.simple_baseline(),
    "default": TrackerOptions(),
    "hungarian": TrackerOptions(matching="hungarian"),
    "iou": TrackerOptions(similarity="iou"),
    "mix (0.5 OKS + 0.5 IoU)": TrackerOptions(similarity="mix"),
    "no motion, no camera comp.": TrackerOptions(motion="none", camera_compensation=False),
    "no camera comp.": TrackerOptions(camera_compensation=False),
    "max_age 0 (no coasting)": TrackerOptions(max_age=0),
    "flow": TrackerOptions(flow=True),
    "one-euro smoothing": TrackerOptions(smoothing="one_euro"),
}


def aggregate(results: list[SceneMetrics]) -> list[SceneMetrics]:
    """Mean MOTA / IDF1 and summed counts per (scene, option set), in first-seen order."""
    groups: dict[tuple[str, str], list[SceneMetrics]] = defaultdict(list)
    for result in results:
        groups[(result.scene, result.option_set)].append(result)
    return [SceneMetrics(scene, option_set, float(np.mean([r.mota for r in runs])),
                         float(np.mean([r.idf1 for r in runs])), sum(r.num_switches for r in runs),
                         sum(r.num_false_positives for r in runs), sum(r.num_misses for r in runs),
                         sum(r.num_fragmentations for r in runs))
            for (scene, option_set), runs in groups.items()]


def save_figure(rows: list[SceneMetrics], example_scene, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - about 1 s, only when a figure is saved

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after the Agg backend is chosen

    option_sets = list(dict.fromkeys(r.option_set for r in rows))
    scenes = list(dict.fromkeys(r.scene for r in rows))
    table = {(r.scene, r.option_set): r for r in rows}
    figure, axes = plt.subplots(1, 3, figsize=(20, 5.5), gridspec_kw={"width_ratios": [2, 2, 1.6]})
    width = 0.8 / len(option_sets)
    x = np.arange(len(scenes))
    for index, option_set in enumerate(option_sets):
        offset = (index - len(option_sets) / 2 + 0.5) * width
        axes[0].bar(x + offset, [table[(s, option_set)].idf1 for s in scenes], width, label=option_set)
        axes[1].bar(x + offset, [table[(s, option_set)].num_switches for s in scenes], width)
    for axis, title in zip(axes[:2], ("IDF1 (higher is better)", "ID switches (lower is better)")):
        axis.set_xticks(x, scenes)
        axis.set_title(title)
    axes[0].set_ylim(0, 1.05)
    axes[1].set_yscale("symlog")
    axes[0].legend(fontsize=7, loc="lower left")

    tracker = PoseTracker(flow=True)
    frame_index = len(example_scene.frames) // 2
    for frame in example_scene.frames[: frame_index + 1]:
        result = tracker.update(frame.keypoints, frame.boxes, frame.scores, frame.image)
    axes[2].imshow(frame.image[..., ::-1])
    colours = plt.get_cmap("tab10")
    for track_id, keypoints, propagated in zip(result.track_ids, result.keypoints, result.propagated):
        colour = colours(int(track_id) % 10)
        for start, end in COCO_SKELETON:
            axes[2].plot(keypoints[[start, end], 0], keypoints[[start, end], 1], color=colour, linewidth=2,
                         linestyle="--" if propagated else "-")
        axes[2].scatter(keypoints[:, 0], keypoints[:, 1], s=14, color=colour, marker="x" if propagated else "o")
        axes[2].text(keypoints[:, 0].min(), keypoints[:, 1].min() - 4, f"ID {track_id}", color=colour, fontsize=9,
                     bbox=dict(facecolor="black", alpha=0.5, pad=1))
    axes[2].set_title(f"{example_scene.name}, frame {frame_index}, flow on (dashed: flow-recovered)")
    axes[2].axis("off")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="scenes per scenario (seeds 0..N-1)")
    parser.add_argument("--frames", type=int, default=150, help="frames per scene")
    default_plot = Path(__file__).resolve().parents[1] / "docs" / "tracker_quality.png"
    parser.add_argument("--plot", default=str(default_plot), help="figure to write ('' to skip)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    scenes = [make_scene(name, seed=seed, num_frames=args.frames, render=True)
              for name in SCENARIOS for seed in range(args.seeds)]
    rows = aggregate(evaluate(scenes, OPTION_SETS, progress=True))
    print(f"Seeds 0..{args.seeds - 1}, {args.frames} frames each. MOTA and IDF1: mean over seeds; "
          "ID switches, false positives and misses: totals.\n")
    print("| scene | option set | MOTA | IDF1 | ID switches | FP | misses |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r.scene} | {r.option_set} | {r.mota:.3f} | {r.idf1:.3f} | {r.num_switches} | "
              f"{r.num_false_positives} | {r.num_misses} |")
    if args.plot:
        save_figure(rows, make_scene("crossing", seed=0, num_frames=args.frames, render=True), Path(args.plot))
        logger.info("figure written to %s", args.plot)
    logger.info("done in %.1f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
