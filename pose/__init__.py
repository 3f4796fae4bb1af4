"""HRNet top-down pose estimation: network, pre/post-processing, weights, evaluation."""
