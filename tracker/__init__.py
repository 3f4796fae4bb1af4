"""PoseTrack-style multi-person pose tracking (numpy only, no torch)."""
