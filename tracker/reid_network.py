"""`OnnxReidEncoder`: appearance from a person re-identification network in an ONNX file.

The network takes (B, 3, H, W) float32 RGB crops normalised with the ImageNet
mean and standard deviation (what torchreid's OSNet and most ReID exports
expect; H, W come from the file, 256 x 128 when the file leaves them open) and
returns (B, D) embeddings. Each person's box is cut out, resized and run in
one batch; the L2-normalised embedding is the descriptor's single "part", so
the distance (Euclidean between unit vectors) / 2 runs from 0 (same) to 1
(opposite). docs/REID.md says how to export one (e.g. OSNet from torchreid).

onnxruntime (the `onnx` extra) is imported only when such a network is named;
a missing or unreadable file is a `ValueError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tracker.appearance import Appearance

_MEAN_RGB = np.array([0.485, 0.456, 0.406], np.float32) * 255
_STD_RGB = np.array([0.229, 0.224, 0.225], np.float32) * 255
_DEFAULT_INPUT_HW = (256, 128)


class OnnxReidEncoder:
    """Appearance descriptors from a ReID network (see the module docstring).

    A pose is seen when its box has at least 4 px on each side inside the frame.
    """

    num_parts = 1
    # Unit vectors are at most 2 apart: half of that reads as 1 (clearly different).
    distance_scale = 2.0

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"reid network {path}: no such file")
        try:
            import onnxruntime  # noqa: PLC0415  (optional extra, only for a named network)
        except ImportError as error:
            raise ValueError(f"reid network {path}: needs onnxruntime (pip install 'hrtrack[onnx]'): {error}") \
                from error
        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = threads
        try:
            self._session = onnxruntime.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable models
            raise ValueError(f"reid network {path}: not a readable ONNX model ({error})") from error
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise ValueError(f"reid network {path}: expected one (B, 3, H, W) input, got "
                             f"{[(item.name, item.shape) for item in inputs]}")
        height, width = shape[2], shape[3]
        self.input_hw = (height, width) if isinstance(height, int) and isinstance(width, int) else _DEFAULT_INPUT_HW
        self._input_name = inputs[0].name
        self._fixed_batch = shape[0] if isinstance(shape[0], int) else None
        probe = self._run(np.zeros((1, 3, *self.input_hw), np.float32))
        if probe.ndim != 2:
            raise ValueError(f"reid network {path}: expected (B, D) embeddings, got shape {probe.shape}")
        self.num_features = int(probe.shape[1])
        self.path = path

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._fixed_batch is None:
            return np.asarray(self._session.run(None, {self._input_name: batch})[0], np.float32)
        return np.concatenate([np.asarray(self._session.run(None, {self._input_name: batch[i:i + 1]})[0], np.float32)
                               for i in range(len(batch))]).reshape(len(batch), -1)

    def encode(self, frame: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray,
               keypoint_threshold: float) -> Appearance:
        n = len(boxes)
        features = np.zeros((n, 1, self.num_features), np.float32)
        seen = np.zeros((n, 1), bool)
        if n == 0:
            return Appearance(features, seen)
        image = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        height, width = image.shape[:2]
        low = np.clip(np.floor(boxes[:, :2]), 0, [width, height]).astype(np.int64)
        high = np.clip(np.ceil(boxes[:, 2:]), 0, [width, height]).astype(np.int64)
        inside = ((high - low) >= 4).all(axis=1).nonzero()[0]
        if len(inside) == 0:
            return Appearance(features, seen)
        out_h, out_w = self.input_hw
        crops = np.empty((len(inside), out_h, out_w, 3), np.float32)
        for slot, index in enumerate(inside):
            (x1, y1), (x2, y2) = low[index], high[index]
            crops[slot] = cv2.resize(image[y1:y2, x1:x2], (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        crops = (crops[..., ::-1] - _MEAN_RGB) / _STD_RGB  # BGR -> RGB, ImageNet normalisation
        embedding = self._run(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
        embedding /= np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
        features[inside, 0] = embedding
        seen[inside, 0] = True
        return Appearance(features, seen)
