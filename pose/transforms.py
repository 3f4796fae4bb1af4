"""Top-down crop geometry and input normalisation, exactly as the official HRNet code.

Coordinate frames:
- image pixels: x right, y down, origin at the top-left corner of the top-left
  pixel (OpenCV convention; no half-pixel corrections anywhere, like the official code);
- crop pixels: the network input of size (input_w, input_h);
- heatmap pixels: crop pixels / 4 (no half-pixel offset).

A person box becomes a (center, scale) pair: center in image pixels, scale =
(w, h) / 200 of the aspect-corrected box enlarged by 1.25 (`pixel_std` 200 is
a legacy unit of the official code). The float32/float64 mix of the official
functions is reproduced on purpose: it makes the crops bit-exact (FACTS section 3).
"""

from __future__ import annotations

import cv2
import numpy as np

PIXEL_STD = 200.0
BOX_ENLARGE = 1.25
IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def box_to_center_scale(box_xywh, aspect_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Official `_xywh2cs`: one box [x, y, w, h] (image px) to (center, scale).

    Args:
        box_xywh: 4 numbers, top-left corner and size in image pixels.
        aspect_ratio: input width / input height of the network (0.75 for 192x256).

    Returns:
        center: (2,) float32 image px; scale: (2,) float32 in units of 200 px,
        aspect-corrected and multiplied by 1.25.
    """
    x, y, w, h = (float(v) for v in box_xywh[:4])
    center = np.zeros(2, dtype=np.float32)
    center[0] = x + w * 0.5
    center[1] = y + h * 0.5
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / PIXEL_STD, h * 1.0 / PIXEL_STD], dtype=np.float32)
    # -1 is a legacy "no box" marker in the official code; keep its behaviour.
    if center[0] != -1:
        scale = scale * BOX_ENLARGE
    return center, scale


def boxes_to_centers_scales(boxes, aspect_ratio: float, box_format: str = "xyxy") -> tuple[np.ndarray, np.ndarray]:
    """Many boxes to (centers, scales).

    Args:
        boxes: (N, 4) image px, either [x1, y1, x2, y2] ("xyxy", the detector's
            format; w = x2 - x1 and h = y2 - y1 like the official demo) or
            [x, y, w, h] ("xywh", COCO json as given).
        aspect_ratio: input width / input height.

    Returns:
        centers (N, 2) float32 image px, scales (N, 2) float32 (units of 200 px).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    if box_format == "xyxy":
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    elif box_format == "xywh":
        xywh = boxes
    else:
        raise ValueError(f"box_format must be 'xyxy' or 'xywh', got {box_format!r}")
    centers = np.zeros((len(boxes), 2), np.float32)
    scales = np.zeros((len(boxes), 2), np.float32)
    for i, box in enumerate(xywh):
        centers[i], scales[i] = box_to_center_scale(box, aspect_ratio)
    return centers, scales


def _rotate_direction(point, rot_rad: float) -> list:
    sin, cos = np.sin(rot_rad), np.cos(rot_rad)
    return [point[0] * cos - point[1] * sin, point[0] * sin + point[1] * cos]


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    direction = a - b
    return b + np.array([-direction[1], direction[0]], dtype=np.float32)


def get_affine_transform(center, scale, rot: float, output_size, inv: bool = False) -> np.ndarray:
    """Official `get_affine_transform` (no shift): the 2x3 crop matrix.

    Maps image px to output px (or back with `inv=True`). Only scale[0] (the
    width) is used. Built from three float32 point pairs and
    `cv2.getAffineTransform`, as the official code does, so that crops are
    bit-exact; the closed form in float64 differs by up to 1.4e-5.

    Args:
        center: (2,) float32 image px; scale: (2,) float32 units of 200 px;
        rot: degrees (counter-clockwise in the image); output_size: (w, h) px.

    Returns:
        (2, 3) float64 matrix.
    """
    scale = np.asarray(scale, dtype=np.float32)
    center = np.asarray(center, dtype=np.float32)
    output_size = np.asarray(output_size)
    scale_px = scale * 200.0
    src_w = scale_px[0]
    dst_w, dst_h = output_size[0], output_size[1]
    rot_rad = np.pi * rot / 180
    src_dir = _rotate_direction([0, src_w * -0.5], rot_rad)
    dst_dir = np.array([0, dst_w * -0.5], np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center
    src[1, :] = center + src_dir
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    src[2:, :] = _third_point(src[0, :], src[1, :])
    dst[2:, :] = _third_point(dst[0, :], dst[1, :])
    if inv:
        return cv2.getAffineTransform(np.float32(dst), np.float32(src))
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def crop(image, center, scale, output_size, rot: float = 0.0) -> np.ndarray:
    """Official crop: `cv2.warpAffine` (bilinear, constant 0 border) of a uint8 image.

    Args:
        image: (H, W, C) uint8 image (any channel order; channels are warped
            independently, so cropping BGR and reordering afterwards gives the
            same bytes as cropping RGB).
        center, scale: from `box_to_center_scale`; output_size: (w, h) px.

    Returns:
        (out_h, out_w, C) uint8 crop.
    """
    matrix = get_affine_transform(center, scale, rot, output_size)
    width, height = int(output_size[0]), int(output_size[1])
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR)


def normalize(crops_rgb: np.ndarray) -> np.ndarray:
    """ToTensor + Normalize(ImageNet mean/std) in float32, like torchvision.

    Args:
        crops_rgb: (N, H, W, 3) or (H, W, 3) uint8, channel order R, G, B.

    Returns:
        (N, 3, H, W) or (3, H, W) float32 network input.
    """
    x = np.asarray(crops_rgb).astype(np.float32) / np.float32(255)
    x = (x - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def network_input(image_bgr: np.ndarray, centers, scales, input_size, color_rgb: bool = True) -> np.ndarray:
    """Crops of one image as network input: `crop` each (center, scale), BGR -> RGB when asked, `normalize`.

    Args:
        image_bgr: (H, W, 3) uint8 BGR (as cv2.imread returns).
        centers, scales: (N, 2) float32 crop parameters (`boxes_to_centers_scales`).
        input_size: (w, h) network input px.
        color_rgb: reorder to RGB (official DATASET.COLOR_RGB).

    Returns:
        (N, 3, h, w) float32 normalised crops.
    """
    width, height = int(input_size[0]), int(input_size[1])
    crops = np.empty((len(centers), height, width, 3), np.uint8)
    for i, (center, scale) in enumerate(zip(centers, scales)):
        # Warping BGR then reordering channels equals the official
        # "convert the whole image, then warp": channels warp independently.
        crops[i] = crop(image_bgr, center, scale, (width, height))
    if color_rgb:
        crops = crops[..., ::-1]
    return normalize(crops)


def transform_preds(coords, center, scale, output_size) -> np.ndarray:
    """Official `transform_preds`: points in output (heatmap) px back to image px.

    Args:
        coords: (K, 2) points in the frame of a crop of size `output_size` (w, h).
        center, scale: the crop's (center, scale).

    Returns:
        (K, 2) float64 image px.
    """
    coords = np.asarray(coords, dtype=np.float64)
    matrix = get_affine_transform(center, scale, 0, output_size, inv=True)
    out = np.empty(coords.shape[:-1] + (2,), dtype=np.float64)
    for row in range(2):
        out[..., row] = coords[..., 0] * matrix[row, 0] + coords[..., 1] * matrix[row, 1] + matrix[row, 2]
    return out


def fliplr_joints(joints, joints_vis, width: int, flip_pairs) -> tuple[np.ndarray, np.ndarray]:
    """Official training flip of joints (`fliplr_joints`): x -> width - 1 - x, swap pairs.

    Named and worded as the official function it mirrors ("joint" = keypoint).

    The official function multiplies the joints by their visibility, so
    invisible joints come out as (0, 0); kept here because training targets
    depend on it.

    Args:
        joints: (J, 3) image px (x, y, 0); joints_vis: (J, 3) visibility flags;
        width: image width px; flip_pairs: (left, right) index pairs.

    Returns:
        flipped joints (J, 3) and visibility (J, 3), new arrays.
    """
    joints = np.array(joints, dtype=np.float64, copy=True)
    joints_vis = np.array(joints_vis, dtype=np.float64, copy=True)
    joints[:, 0] = width - joints[:, 0] - 1
    for left, right in flip_pairs:
        joints[[left, right], :] = joints[[right, left], :]
        joints_vis[[left, right], :] = joints_vis[[right, left], :]
    return joints * joints_vis, joints_vis
