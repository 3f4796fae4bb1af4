"""The one frame loop of the evaluators: a dataset's listed images through `pipeline.Pipeline`.

`posetrack run` and `coco eval` both predict the images an annotation file
lists, in its order, with boxes that a box table gives per image id (a
detection file, the ground truth) or that a detector network finds. Both run
the same `Pipeline` as `track`, with

- a source: `pipeline.capture.ImageListSource` over the listed files, read by
  `core.io.read_image` (the one EXIF rule), failing on a missing image (every
  listed frame must be predicted);
- a detector: `ListedImageBoxes` (frame position -> image id -> the table's
  boxes) or the network itself;
- a sink that collects or writes what the evaluator needs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from core.types import Detections, Frame
from pipeline.capture import ImageListSource, SourceError
from pipeline.pipeline import Pipeline, PipelineError


class BoxTable(Protocol):
    """Boxes looked up by image id (`detector.FileDetector`, `detector.GroundTruthDetector`)."""

    def detections_for_image_id(self, image_id: int) -> Detections: ...


class ListedImageBoxes:
    """A `detector.Detector` for the frames of `ImageListSource(listed files)`: frame i is image `image_ids[i]`.

    The boxes are the table's, exactly (with `Detections.boxes_xywh`), so a
    detection file or the ground truth reaches the pose stage as the official
    evaluation reads it.
    """

    def __init__(self, boxes: BoxTable, image_ids: Sequence[int]) -> None:
        self.boxes = boxes
        self.image_ids = [int(image_id) for image_id in image_ids]

    def __call__(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self.boxes.detections_for_image_id(self.image_ids[frame.index]) for frame in frames]


def predict_listed_images(paths: Sequence[str | os.PathLike], name: str, detector, estimator, tracker=None, *,
                          sinks: Sequence = (), progress: bool = True, unit: str = "frame",
                          **pipeline_options) -> int:
    """Run the pipeline over `paths` (frame i = paths[i]) into `sinks`; returns the number of frames.

    A missing or unreadable image raises FileNotFoundError naming it; an
    error of another stage is re-raised as itself (OSError/ValueError) when it
    names its cause, else as `PipelineError`. `pipeline_options` go to
    `Pipeline` (pose_batch_frames, queue_size, exact_file_boxes).
    """
    try:
        source = ImageListSource([Path(path) for path in paths], name=name, on_unreadable="fail")
    except SourceError as error:
        raise FileNotFoundError(str(error)) from error
    frames = 0
    pipeline = Pipeline(source, detector, estimator, tracker, live=False, sinks=sinks, **pipeline_options)
    try:
        with tqdm(total=len(paths), desc=Path(name).stem, unit=unit, leave=False, disable=not progress) as bar:
            for _ in pipeline.run():
                frames += 1
                bar.update(1)
    except PipelineError as error:
        if isinstance(error.error, SourceError):
            raise FileNotFoundError(str(error.error)) from error
        if isinstance(error.error, (OSError, ValueError)):
            raise error.error from error
        raise
    return frames
