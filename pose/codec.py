"""The heatmap codec: training targets, decoding, flip-back and sub-pixel refinement.

One object owns every conversion between joint coordinates and heatmaps, so
that training, inference and evaluation cannot drift apart (the MMPose codec
idea). Everything reproduces the official HRNet code (FACTS sections 4-6)
unless an option says otherwise:

- `decode` with `decoding="official"`: `get_max_preds` + `get_final_preds`
  (argmax, first maximum on ties; non-positive maxima give (0, 0); the quarter
  pixel offset towards the higher neighbour when 1 < px < W-1 and 1 < py < H-1);
- `decoding="dark"`: DARK refinement (Zhang et al., "Distribution-Aware
  Coordinate Representation for Human Pose Estimation", CVPR 2020): blur the
  heatmap with a Gaussian of the training sigma, take the log, and move the
  integer maximum by the second-order Taylor step -H^-1 g;
- `flip_back` / `merge_flip`: the official flip test (mirror, swap pairs, shift
  one column right, average);
- `encode`: the official `generate_target` with its edge quirks, or an unbiased
  sub-pixel Gaussian (`unbiased=True`, the DARK encoding).

Heatmap coordinates are crop pixels / stride (4): heatmap x <-> crop x / 4.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose.transforms import transform_preds

DECODINGS = ("official", "dark")


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Official `get_max_preds`: integer argmax of every heatmap.

    Args:
        heatmaps: (N, J, H, W) float32.

    Returns:
        coords: (N, J, 2) float32 heatmap px (x, y); (0, 0) where the maximum is not > 0.
        maxvals: (N, J, 1) the maxima, unchanged (may be <= 0).
    """
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must have shape (N, J, H, W), got {heatmaps.shape}")
    n, j, _, width = heatmaps.shape
    flat = heatmaps.reshape((n, j, -1))
    index = np.argmax(flat, 2).reshape((n, j, 1))
    maxvals = np.amax(flat, 2).reshape((n, j, 1))
    coords = np.tile(index, (1, 1, 2)).astype(np.float32)
    coords[:, :, 0] = coords[:, :, 0] % width
    coords[:, :, 1] = np.floor(coords[:, :, 1] / width)
    coords *= np.tile(np.greater(maxvals, 0.0), (1, 1, 2)).astype(np.float32)
    return coords, maxvals


def quarter_offset(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Official POST_PROCESS: move each argmax 0.25 px towards the higher neighbour.

    Applied only where 1 < px < W-1 and 1 < py < H-1 (px, py = coords rounded
    half up); both conditions must hold for either axis to move.

    Args:
        heatmaps: (N, J, H, W); coords: (N, J, 2) float32 heatmap px from `get_max_preds`.

    Returns:
        (N, J, 2) float32 refined heatmap px (a new array).
    """
    n, j, height, width = heatmaps.shape
    coords = coords.copy()
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    inside = (px > 1) & (px < width - 1) & (py > 1) & (py < height - 1)
    sample, joint = np.nonzero(inside)
    x, y = px[inside], py[inside]
    maps = heatmaps[sample, joint]
    rows = np.arange(len(sample))
    diff = np.stack(
        [maps[rows, y, x + 1] - maps[rows, y, x - 1], maps[rows, y + 1, x] - maps[rows, y - 1, x]], axis=1
    ).astype(np.float64)
    coords[sample, joint] += np.sign(diff) * 0.25
    return coords


def dark_kernel_size(sigma: float) -> int:
    """Odd blur kernel for a Gaussian of `sigma` heatmap px (11 for sigma 2, 17 for sigma 3, as in MMPose)."""
    return 2 * int(round((sigma - 0.8) / 0.3 + 1)) + 1


def gaussian_blur(heatmaps: np.ndarray, sigma: float, kernel_size: int | None = None) -> np.ndarray:
    """DARK modulation: blur each map (zero padding outside), then rescale to its original maximum.

    Args:
        heatmaps: (N, J, H, W) float; sigma: Gaussian sigma in heatmap px.

    Returns:
        (N, J, H, W) float32 blurred maps (a new array).
    """
    kernel = dark_kernel_size(sigma) if kernel_size is None else int(kernel_size)
    border = (kernel - 1) // 2
    n, j, height, width = heatmaps.shape
    out = np.empty((n, j, height, width), np.float32)
    padded = np.zeros((height + 2 * border, width + 2 * border), np.float64)
    for index in np.ndindex(n, j):
        original_max = float(np.max(heatmaps[index]))
        padded[border:-border, border:-border] = heatmaps[index]
        blurred = cv2.GaussianBlur(padded, (kernel, kernel), sigma)[border:-border, border:-border]
        blurred_max = float(np.max(blurred))
        out[index] = blurred * (original_max / blurred_max) if blurred_max != 0 else blurred
    return out


def dark_refine(heatmaps: np.ndarray, coords: np.ndarray, sigma: float) -> np.ndarray:
    """DARK sub-pixel refinement of integer maxima.

    Args:
        heatmaps: (N, J, H, W) raw network heatmaps; coords: (N, J, 2) integer
            maxima in heatmap px (from `get_max_preds`); sigma: training sigma.

    Returns:
        (N, J, 2) float32 refined heatmap px. Points within 2 px of the border,
        or where the blurred log-heatmap is not a local maximum (Hessian not
        negative definite), keep their integer position; steps are capped at
        1 heatmap px per axis.
    """
    n, j, height, width = heatmaps.shape
    log_maps = np.log(np.maximum(gaussian_blur(heatmaps, sigma), 1e-10)).astype(np.float64)
    coords = coords.astype(np.float32).copy()
    px = coords[..., 0].astype(np.int64)
    py = coords[..., 1].astype(np.int64)
    inside = (px > 1) & (px < width - 2) & (py > 1) & (py < height - 2)
    sample, joint = np.nonzero(inside)
    x, y = px[inside], py[inside]
    m = log_maps[sample, joint]
    r = np.arange(len(sample))
    dx = 0.5 * (m[r, y, x + 1] - m[r, y, x - 1])
    dy = 0.5 * (m[r, y + 1, x] - m[r, y - 1, x])
    dxx = 0.25 * (m[r, y, x + 2] - 2 * m[r, y, x] + m[r, y, x - 2])
    dxy = 0.25 * (m[r, y + 1, x + 1] - m[r, y - 1, x + 1] - m[r, y + 1, x - 1] + m[r, y - 1, x - 1])
    dyy = 0.25 * (m[r, y + 2, x] - 2 * m[r, y, x] + m[r, y - 2, x])
    det = dxx * dyy - dxy**2
    # The published DARK step only needs det != 0. We also require a true
    # maximum (negative definite Hessian) and cap the step at one heatmap pixel:
    # on a Gaussian-like peak nothing changes, while on badly shaped maps (an
    # untrained or uncertain network) the quadratic model would throw the point
    # several pixels away from the argmax.
    ok = (det > 0) & (dxx < 0)
    safe_det = np.where(ok, det, 1.0)
    # -H^-1 g with H = [[dxx, dxy], [dxy, dyy]], written out for the 2x2 case.
    offset_x = -(dyy * dx - dxy * dy) / safe_det
    offset_y = -(-dxy * dx + dxx * dy) / safe_det
    offset = np.clip(np.stack([offset_x, offset_y], axis=1), -1.0, 1.0) * ok[:, None]
    coords[sample, joint] += offset.astype(np.float32)
    return coords


def flip_back(flipped_heatmaps: np.ndarray, flip_pairs) -> np.ndarray:
    """Official `flip_back`: mirror the width axis and swap the channels of each flip pair.

    Args:
        flipped_heatmaps: (N, J, H, W) output of the network on mirrored crops.

    Returns:
        (N, J, H, W) a new array in the un-mirrored frame (no shift).
    """
    out = np.array(flipped_heatmaps[:, :, :, ::-1], copy=True)
    for left, right in flip_pairs:
        out[:, [left, right]] = out[:, [right, left]]
    return out


def shift_right_one_column(heatmaps: np.ndarray) -> np.ndarray:
    """Official SHIFT_HEATMAP: column c takes column c-1 (c >= 1); column 0 keeps its value."""
    out = heatmaps.copy()
    out[..., 1:] = heatmaps[..., :-1]
    return out


def gaussian_target(
    joints,
    joints_vis,
    image_size,
    heatmap_size,
    sigma: float,
    unbiased: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Official `generate_target` (TARGET_TYPE gaussian) for one person.

    Keeps the official code's names (joints, joints_vis) so the two read side
    by side; "joint" here is what the public API calls a keypoint.

    Args:
        joints: (J, 2+) joint (x, y) in input-crop pixels.
        joints_vis: (J,) or (J, 1+) visibility; column 0 is used (> 0 visible).
        image_size, heatmap_size: (w, h) of the network input and output.
        sigma: Gaussian sigma in heatmap px.
        unbiased: False = official (Gaussian on the truncated integer centre,
            `int(x / stride + 0.5)`); True = Gaussian centred on the exact
            sub-pixel position x / stride (DARK's unbiased encoding), same
            support and drop rule.

    Returns:
        target: (J, Hh, Wh) float32, peak 1; target_weight: (J, 1) float32
        (visibility, 0 when the 3-sigma patch lies entirely outside; the
        official quirk keeps weight 1 with an empty map when br is exactly 0).
    """
    joints = np.asarray(joints, dtype=np.float64)
    vis = np.asarray(joints_vis, dtype=np.float64)
    vis = vis[:, 0] if vis.ndim == 2 else vis
    num_joints = len(joints)
    image_size = np.asarray(image_size)
    heatmap_size = np.asarray(heatmap_size)
    heat_w, heat_h = int(heatmap_size[0]), int(heatmap_size[1])
    target_weight = np.ones((num_joints, 1), dtype=np.float32)
    target_weight[:, 0] = vis
    target = np.zeros((num_joints, heat_h, heat_w), dtype=np.float32)
    radius = sigma * 3
    stride = image_size / heatmap_size
    size = 2 * radius + 1
    grid = np.arange(0, size, 1, np.float32)
    grid_col = grid[:, np.newaxis]
    center = size // 2
    official_patch = np.exp(-((grid - center) ** 2 + (grid_col - center) ** 2) / (2 * sigma**2))
    for joint_id in range(num_joints):
        mu_x = int(joints[joint_id][0] / stride[0] + 0.5)
        mu_y = int(joints[joint_id][1] / stride[1] + 0.5)
        ul = [int(mu_x - radius), int(mu_y - radius)]
        br = [int(mu_x + radius + 1), int(mu_y + radius + 1)]
        if ul[0] >= heat_w or ul[1] >= heat_h or br[0] < 0 or br[1] < 0:
            target_weight[joint_id] = 0
            continue
        if target_weight[joint_id] <= 0.5:
            continue
        if unbiased:
            # Sub-pixel centre expressed in patch coordinates.
            cx = joints[joint_id][0] / stride[0] - ul[0]
            cy = joints[joint_id][1] / stride[1] - ul[1]
            patch = np.exp(-((grid - cx) ** 2 + (grid_col - cy) ** 2) / (2 * sigma**2)).astype(np.float32)
        else:
            patch = official_patch
        g_x = max(0, -ul[0]), min(br[0], heat_w) - ul[0]
        g_y = max(0, -ul[1]), min(br[1], heat_h) - ul[1]
        img_x = max(0, ul[0]), min(br[0], heat_w)
        img_y = max(0, ul[1]), min(br[1], heat_h)
        target[joint_id][img_y[0]:img_y[1], img_x[0]:img_x[1]] = patch[g_y[0]:g_y[1], g_x[0]:g_x[1]]
    return target, target_weight


def joints_mse_loss(output, target, target_weight=None):
    """Official JointsMSELoss: 0.5 * mean over all elements of (w * (pred - gt))^2.

    Written per joint like the official code (sum over joints of
    0.5 * MSE(w*pred, w*gt), divided by the number of joints), which is the
    same value up to float rounding.

    Args:
        output, target: (N, J, H, W) torch tensors (or arrays) of heatmaps.
        target_weight: (N, J, 1) joint weights, or None for USE_TARGET_WEIGHT false.

    Returns:
        0-d torch tensor (differentiable with respect to `output`).
    """
    import torch  # noqa: PLC0415 - torch only for the training loss; decoding is numpy

    output = torch.as_tensor(output)
    target = torch.as_tensor(target, device=output.device)
    n, j = output.shape[:2]
    pred = output.reshape(n, j, -1)
    gt = target.reshape(n, j, -1)
    if target_weight is not None:
        weight = torch.as_tensor(target_weight, device=output.device).reshape(n, j, 1)
        pred = pred * weight
        gt = gt * weight
    loss = 0.0
    for joint in range(j):
        loss = loss + 0.5 * torch.nn.functional.mse_loss(pred[:, joint], gt[:, joint], reduction="mean")
    return loss / j


@dataclass(frozen=True)
class HeatmapCodec:
    """Joint coordinates <-> heatmaps for one HRNet experiment.

    Attributes:
        input_size: (w, h) network input px.
        heatmap_size: (w, h) network output px (input / 4).
        sigma: Gaussian target sigma, heatmap px.
        flip_pairs: (left, right) joint index pairs.
        shift_heatmap: official TEST.SHIFT_HEATMAP (one-column shift after flip-back).
        post_process: official TEST.POST_PROCESS (quarter offset); ignored by DARK.
        decoding: "official" or "dark".
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float
    flip_pairs: tuple[tuple[int, int], ...]
    shift_heatmap: bool = True
    post_process: bool = True
    decoding: str = "official"

    def __post_init__(self) -> None:
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {self.decoding!r}")

    @classmethod
    def from_config(cls, config, flip_pairs, decoding: str = "official") -> "HeatmapCodec":
        """Codec of an `ExperimentConfig` (model sizes, sigma, TEST options)."""
        return cls(
            input_size=tuple(int(v) for v in config.model.image_size),
            heatmap_size=tuple(int(v) for v in config.model.heatmap_size),
            sigma=float(config.model.sigma),
            flip_pairs=tuple(tuple(pair) for pair in flip_pairs),
            shift_heatmap=bool(config.test.shift_heatmap),
            post_process=bool(config.test.post_process),
            decoding=decoding,
        )

    def heatmap_coords(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Refined maxima in heatmap px.

        Args:
            heatmaps: (N, J, H, W) float32.

        Returns:
            coords (N, J, 2) float32 heatmap px; scores (N, J) float32 maxima.
        """
        heatmaps = np.asarray(heatmaps, dtype=np.float32)
        coords, maxvals = get_max_preds(heatmaps)
        if self.decoding == "dark":
            coords = dark_refine(heatmaps, coords, self.sigma)
        elif self.post_process:
            coords = quarter_offset(heatmaps, coords)
        return coords, maxvals[..., 0]

    def decode(self, heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Official `get_final_preds`: heatmaps to image keypoints.

        Args:
            heatmaps: (N, J, H, W) float32 network output (after the flip test, if any).
            centers, scales: (N, 2) float32 crop parameters (`box_to_center_scale`).

        Returns:
            keypoints: (N, J, 2) float32 image px; scores: (N, J) float32 heatmap maxima.
        """
        heatmaps = np.asarray(heatmaps, dtype=np.float32)
        coords, scores = self.heatmap_coords(heatmaps)
        height, width = heatmaps.shape[2:]
        keypoints = np.zeros_like(coords)
        for i in range(len(coords)):
            keypoints[i] = transform_preds(coords[i], centers[i], scales[i], [width, height])
        return keypoints, scores.astype(np.float32)

    def flip_back(self, flipped_heatmaps: np.ndarray) -> np.ndarray:
        """Flipped-input output to the unflipped frame: mirror, swap pairs, then the official shift."""
        out = flip_back(np.asarray(flipped_heatmaps), self.flip_pairs)
        return shift_right_one_column(out) if self.shift_heatmap else out

    def merge_flip(self, heatmaps: np.ndarray, flipped_heatmaps: np.ndarray) -> np.ndarray:
        """Official flip test average: (output + flip_back(flipped output)) * 0.5, float32."""
        return (np.asarray(heatmaps, dtype=np.float32) + self.flip_back(flipped_heatmaps).astype(np.float32)) * np.float32(0.5)

    def encode(self, joints, joints_vis, unbiased: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Training target of one person (`gaussian_target` with this codec's sizes and sigma).

        Args:
            joints: (J, 2+) input-crop px; joints_vis: (J,) or (J, 1+) visibility.

        Returns:
            target (J, Hh, Wh) float32, target_weight (J, 1) float32.
        """
        return gaussian_target(joints, joints_vis, self.input_size, self.heatmap_size, self.sigma, unbiased=unbiased)


__all__ = [
    "DECODINGS",
    "HeatmapCodec",
    "dark_refine",
    "flip_back",
    "gaussian_blur",
    "gaussian_target",
    "get_max_preds",
    "joints_mse_loss",
    "quarter_offset",
    "shift_right_one_column",
]
