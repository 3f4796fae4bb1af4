"""`TrackerOptions`: every option of `PoseTracker`, validated, and `OPTION_INFO` describing each.

Each field is declared with `_option(default, help, choices=..., live=...)`,
which stores an `OptionInfo` in the dataclass field's metadata, so the
default, the help text, the allowed values and whether the option is worth
changing while watching are written once, next to the field.

    OPTION_INFO: dict[str, OptionInfo]   # field name -> OptionInfo, in field order
    OptionInfo.help: str                 # one or two sentences, plain text (CLI --help, GUI tooltip)
    OptionInfo.choices: tuple[str, ...] | None   # the allowed values of a text option, else None
    OptionInfo.live: bool                # worth offering in the GUI's live panel
    OptionInfo.path_allowed: bool        # besides the choices, a file path is allowed (`reid`: an ONNX model)

User interfaces derive their widgets and flags from it: the default and type
from `dataclasses.fields(TrackerOptions)`, the rest from `OPTION_INFO[name]`.
`TrackerOptions(...)` rejects a value outside `choices` or a range with a
`ValueError` naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from tracker.matching import MATCHING_METHODS
from tracker.motion import MOTION_MODELS
from tracker.similarity import SIMILARITY_KINDS
from tracker.smoothing import OneEuroParameters

SMOOTHING_KINDS = ("none", "one_euro")
REID_KINDS = ("off", "appearance")
# The file ending of the network form of `reid`.
REID_NETWORK_SUFFIX = ".onnx"


@dataclass(frozen=True)
class OptionInfo:
    """What a user interface needs to know about one `TrackerOptions` field.

    help: plain-text description (units included where they matter).
    choices: the allowed values of a text option; None for numbers, switches and `sigmas`.
    live: True when the option is worth changing while watching a video (the
        GUI's panel offers these; the others stay on the command line and in files).
    path_allowed: besides `choices`, the value may be a file path (a command
        line takes any text; a panel offers the choices).
    """

    help: str
    choices: tuple[str, ...] | None = None
    live: bool = False
    path_allowed: bool = False


def _option(default, help: str, *, choices: tuple[str, ...] | None = None, live: bool = False,
            path_allowed: bool = False):
    """A dataclass field with its `OptionInfo` in the metadata."""
    return dataclasses.field(default=default, metadata={"info": OptionInfo(help, choices, live, path_allowed)})


# Options whose value must lie in [0, 1].
_UNIT_INTERVAL = ("oks_weight", "similarity_threshold", "min_score", "low_score_floor", "keypoint_threshold",
                  "velocity_gain", "coast_velocity_decay", "flow_nms_threshold", "reid_weight")
# Options that count frames or keypoints: integers >= 0.
_COUNTS = ("max_age", "min_hits", "min_keypoints", "velocity_bound_frames", "flow_max_frames", "flow_levels",
           "reid_min_parts", "reid_window_frames", "reid_max_galleries")
# Re-identification numbers that must be > 0.
_POSITIVE = ("reid_threshold", "reid_memory_s", "reid_max_speed", "reid_prototypes")


@dataclass(frozen=True)
class TrackerOptions:
    """Options of `PoseTracker`, with their defaults; see `OPTION_INFO` (or each
    field's `help` below) for what each one does."""

    similarity: str = _option(
        "oks", "How a track and a pose are compared: 'oks' (OKS on confident keypoints, box IoU when a pair "
        "shares fewer than min_keypoints of them), 'iou' (box IoU), or 'mix' (oks_weight * OKS + "
        "(1 - oks_weight) * IoU).", choices=SIMILARITY_KINDS, live=True)
    oks_weight: float = _option(0.5, "Weight of OKS in the 'mix' similarity, in [0, 1].")
    matching: str = _option(
        "greedy", "How tracks are assigned to poses: 'greedy' (best pair first, as in Simple Baselines) or "
        "'hungarian' (maximum total similarity).", choices=MATCHING_METHODS, live=True)
    similarity_threshold: float = _option(
        0.3, "A track and a pose match only at a similarity of at least this, in [0, 1].", live=True)
    max_age: int = _option(
        30, "Frames a lost track is kept for re-identification (0: forget it at the first miss).", live=True)
    min_hits: int = _option(
        1, "Detections a new track needs before it gets an ID; until then its poses get ID -1.", live=True)
    min_score: float = _option(
        0.5, "Lowest detection score that starts a track or takes part in the first two matching stages "
        "(without scores, a pose's score is the mean confidence of its keypoints).", live=True)
    low_score_matching: bool = _option(
        True, "Let detections scoring in [low_score_floor, min_score) continue tracks seen in the previous "
        "frame (ByteTrack); they never start tracks.")
    low_score_floor: float = _option(0.1, "Detections scoring below this are ignored.")
    keypoint_threshold: float = _option(
        0.3, "Keypoints with lower confidence are left out of OKS, keypoint boxes and motion measurements.")
    min_keypoints: int = _option(
        3, "Confident keypoints a pair must share for OKS (else box IoU is used), and that a detection "
        "needs to start a track.")
    motion: str = _option(
        "constant_velocity", "Motion model of the prediction: 'constant_velocity', or 'none' (match "
        "against the last pose as it was).", choices=MOTION_MODELS, live=True)
    velocity_gain: float = _option(0.5, "Weight of a new velocity measurement, in [0, 1] (1: no smoothing).")
    coast_velocity_decay: float = _option(0.9, "Per-frame factor on the velocity while a track coasts.")
    velocity_bound_frames: int = _option(
        4, "A velocity is at most as long as the track's observed image displacement averaged over about "
        "this many frames (plus velocity_bound_margin_px): a person standing still or swaying back and forth "
        "is not extrapolated away (0: no bound).")
    velocity_bound_margin_px: float = _option(
        1.0, "Slack of that bound in px per frame (>= 0), so that a steady walker's velocity is never cut.")
    lost_scale_growth: float = _option(
        0.1, "A track missing m frames is compared with the OKS scale area * (1 + lost_scale_growth * m)^2: "
        "the longer it is gone, the less certain its predicted pose.")
    camera_compensation: bool = _option(
        True, "Estimate the image shift of the whole scene (camera shake or pan) from the people seen in "
        "the previous frame and add it to every prediction; needs 3 or more people in view.")
    camera_search_scale: float = _option(
        3.0, "For the camera-shift estimate after a jolt, people are paired by OKS with a scale this many "
        "times larger (>= 1).")
    flow: bool = _option(
        False, "Propagate poses with Lucas-Kanade optical flow (needs the frame): used as the prediction "
        "and to recover people the detector missed.", live=True)
    flow_nms_threshold: float = _option(
        0.5, "A flow-recovered pose is dropped when its OKS with a detection (or a stronger recovered pose) "
        "is at least this.")
    flow_max_frames: int = _option(3, "Frames in a row a track may live on flow-recovered poses.")
    flow_window_px: int = _option(21, "Lucas-Kanade window side in pixels (>= 3).")
    flow_levels: int = _option(3, "Lucas-Kanade pyramid levels above the full image.")
    smoothing: str = _option(
        "none", "Smoothing of the output keypoints: 'none' or 'one_euro' (matching always uses the raw "
        "poses).", choices=SMOOTHING_KINDS, live=True)
    one_euro_min_cutoff_hz: float = _option(
        1.0, "One-Euro cutoff at rest, Hz (lower: less jitter on a still joint, more lag).")
    # MMDeploy's (1 Hz, 0.007) lags a walking person by about 10 px at 30 fps,
    # which costs MOTA on our synthetic scenes; (1 Hz, 0.05) lags about 3 px
    # and still cuts the variance of a still joint's jitter about 4x.
    one_euro_beta: float = _option(0.05, "One-Euro cutoff increase per px/s of joint speed (higher: less lag).")
    one_euro_derivative_cutoff_hz: float = _option(1.0, "One-Euro cutoff of the speed estimate, Hz.")
    fps: float = _option(30.0, "Frame rate assumed by the One-Euro filter (> 0).")
    reid: str = _option(
        "off", "Re-identification by appearance (needs the frame): 'off'; 'appearance', colour and texture of "
        "the body parts sampled along the skeleton; or the path of an ONNX ReID network (e.g. an OSNet export, "
        "see docs/REID.md). Appearance joins the pose similarity in matching, and a track lost for up to "
        "reid_memory_s gets its ID back when the person returns.", choices=REID_KINDS, live=True,
        path_allowed=True)
    reid_weight: float = _option(
        0.3, "Weight of appearance similarity against pose similarity in matching active tracks, in [0, 1]; "
        "appearance only re-ranks pairs the pose similarity allows.")
    reid_threshold: float = _option(
        0.35, "Largest appearance distance (0 same look, about 1 clearly different) at which a returning "
        "person gets a lost track's ID.", live=True)
    reid_margin: float = _option(
        0.15, "A returning person gets a lost track's ID only when every other gallery (lost tracks and the "
        "people in view) is at least this much further in appearance distance (>= 0).")
    reid_memory_s: float = _option(
        30.0, "Seconds (at fps) a lost track's appearance gallery is kept for re-identification.", live=True)
    reid_max_galleries: int = _option(100, "Most galleries of lost tracks kept (the oldest go first).")
    reid_prototypes: int = _option(4, "Appearance prototypes per track (distinct views, e.g. front and back).")
    reid_min_parts: int = _option(
        3, "Body parts (torso, upper arms, forearms, thighs, shins) a view must show to update a gallery or "
        "to be re-identified.")
    reid_max_speed: float = _option(
        2.0, "A returning person is at most this many body heights per second (plus one height) from where "
        "the lost track was last seen.")
    reid_window_frames: int = _option(
        15, "A new track may still get a lost track's ID during its first this many frames that show enough "
        "body parts; and while someone is lost, a detection showing too few parts waits (ID -1) up to this "
        "many frames before it starts a track: a person coming back half-visible is judged on a fuller view.")
    sigmas: tuple[float, ...] | None = _option(
        None, "Per-keypoint OKS sigmas (comma-separated on the command line); unset: the 17 COCO sigmas.")

    def __post_init__(self) -> None:
        for name, info in OPTION_INFO.items():
            value = getattr(self, name)
            if info.path_allowed and isinstance(value, str) and value.lower().endswith(REID_NETWORK_SUFFIX):
                continue
            if info.choices is not None and value not in info.choices:
                if info.path_allowed:
                    raise ValueError(f"TrackerOptions.{name} must be one of {info.choices} or the path of a "
                                     f"{REID_NETWORK_SUFFIX} file, got {value!r}")
                raise ValueError(f"TrackerOptions.{name} must be one of {info.choices}, got {getattr(self, name)!r}")
        for name in _UNIT_INTERVAL:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"TrackerOptions.{name} must be in [0, 1], got {value}")
        for name in _COUNTS:
            if getattr(self, name) < 0:
                raise ValueError(f"TrackerOptions.{name} must be >= 0, got {getattr(self, name)}")
        for name in _POSITIVE:
            if not getattr(self, name) > 0:
                raise ValueError(f"TrackerOptions.{name} must be > 0, got {getattr(self, name)}")
        if self.reid_margin < 0:
            raise ValueError(f"TrackerOptions.reid_margin must be >= 0, got {self.reid_margin}")
        if self.velocity_bound_margin_px < 0:
            raise ValueError(f"TrackerOptions.velocity_bound_margin_px must be >= 0, got {self.velocity_bound_margin_px}")
        if self.lost_scale_growth < 0 or self.fps <= 0 or self.flow_window_px < 3 or self.camera_search_scale < 1:
            raise ValueError("TrackerOptions: lost_scale_growth must be >= 0, fps > 0, flow_window_px >= 3 "
                             "and camera_search_scale >= 1")
        OneEuroParameters(self.one_euro_min_cutoff_hz, self.one_euro_beta, self.one_euro_derivative_cutoff_hz)
        if self.sigmas is not None:
            sigmas = np.asarray(self.sigmas, np.float64)
            if sigmas.ndim != 1 or len(sigmas) == 0 or not np.all(sigmas > 0):
                raise ValueError(
                    f"TrackerOptions.sigmas must be a non-empty sequence of positive numbers, got {self.sigmas}")

    @classmethod
    def simple_baseline(cls, **overrides) -> "TrackerOptions":
        """The "simple greedy OKS" baseline: greedy OKS matching between consecutive
        frames only (no lost tracks, no motion, no camera compensation, no
        low-score stage, no flow)."""
        settings = dict(similarity="oks", matching="greedy", max_age=0, min_hits=1,
                        low_score_matching=False, motion="none", camera_compensation=False,
                        flow=False, smoothing="none")
        settings.update(overrides)
        return cls(**settings)


# Field name -> OptionInfo, in the order the fields are declared.
OPTION_INFO: dict[str, OptionInfo] = {item.name: item.metadata["info"] for item in dataclasses.fields(TrackerOptions)}
