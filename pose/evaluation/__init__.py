"""Evaluation: PoseTrack (poseval-exact AP and MOTA), COCO keypoints, MPII PCKh.

Kept free of imports so that `main.py <command> --help` and the CLI modules
stay light; import the submodules you need:

    from pose.evaluation import posetrack, posetrack_io, mpii
"""
