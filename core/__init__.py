"""The ground floor: what every stage shares, and nothing that runs a model.

- `core.types`: the typed objects that pass between stages (`Frame`,
  `Detections`, `Poses`, `TrackedPoses`, `FrameResult`);
- `core.skeletons`: joint names, flip pairs, skeleton edges and OKS sigmas
  (the one copy);
- `core.boxes`: box conversions and the official ground-truth box cleaning;
- `core.io`: reading images and JSON with errors that name the file, writing
  outputs atomically (`.part` + rename);
- `core.posetrack_format`: the PoseTrack 2017/2018 reader and writer;
- `core.environment`: the device and offline rules;
- `core.lazy`: lazy package exports, so `import pose` does not load torch;
- `core.state_dicts`: short summaries of weights files that do not fit a model.

Imports only numpy, cv2 and the standard library; never another package of ours.
"""
