"""Real-time playback of files (app.playback.PacedSource) on a fake clock: pace, speed, drops, pauses."""

from __future__ import annotations

import pytest

from app.playback import PacedSource
from pipeline.capture import SourceTimeout
from tests.pipeline_fakes import ListSource


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def file_source(count: int, fps: float) -> ListSource:
    """A file-like source with a frame rate and a known length, as `VideoFileSource`."""
    source = ListSource(count)
    source.fps = fps
    source.frame_count = count
    return source


def read_all(paced: PacedSource, clock: FakeClock, work_s: float = 0.0) -> list[tuple[int, float]]:
    """(frame index, clock time) of every frame delivered, as the capture stage reads: retrying on
    SourceTimeout, and spending `work_s` on each frame before the next read."""
    delivered = []
    while True:
        try:
            frame = paced.read(timeout_s=0.2)
        except SourceTimeout:
            continue
        if frame is None:
            return delivered
        delivered.append((frame.index, clock.now))
        clock.now += work_s


@pytest.mark.parametrize("speed", [0.25, 1.0, 4.0])
def test_frames_leave_at_the_file_rate_times_the_speed(speed):
    clock = FakeClock()
    paced = PacedSource(file_source(6, fps=10.0), speed, clock=clock, sleep=clock.sleep)
    delivered = read_all(paced, clock)
    assert [index for index, _ in delivered] == list(range(6))
    assert [at for _, at in delivered] == pytest.approx([index / (10.0 * speed) for index in range(6)])
    assert paced.dropped_frames == 0


def test_as_fast_as_possible_never_waits():
    clock = FakeClock()
    paced = PacedSource(file_source(6, fps=10.0), None, clock=clock, sleep=clock.sleep)
    assert read_all(paced, clock) == [(index, 0.0) for index in range(6)]


def test_late_frames_are_dropped_not_queued():
    clock = FakeClock()
    paced = PacedSource(file_source(30, fps=10.0), 1.0, clock=clock, sleep=clock.sleep)
    # Each frame costs 0.25 s, two and a half frame periods: the picture keeps to the clock.
    delivered = read_all(paced, clock, work_s=0.25)
    indices = [index for index, _ in delivered]
    assert indices[:4] == [0, 2, 5, 7]
    for index, at in delivered[:-1]:
        # Never behind the clock by a whole frame, never ahead of it.
        assert at * 10.0 - 1.0 < index <= at * 10.0 + 1e-9
    # Every frame read was shown or counted as dropped; the file's last frame is always shown.
    assert indices[-1] == 29
    assert paced.dropped_frames == 30 - len(delivered)


def test_pausing_freezes_the_clock():
    clock = FakeClock()
    paced = PacedSource(file_source(10, fps=10.0), 1.0, paused=True, clock=clock, sleep=clock.sleep)
    # Paused (stepping): frames leave at once.
    assert [paced.read(0.2).index for _ in range(3)] == [0, 1, 2]
    assert clock.now == 0.0
    clock.now += 60.0  # a long pause: nothing of it is made up by dropping
    paced.set_paused(False)
    delivered = read_all(paced, clock)
    assert [index for index, _ in delivered] == list(range(3, 10))
    assert [at - 60.0 for _, at in delivered] == pytest.approx([0.1 * step for step in range(7)])
    assert paced.dropped_frames == 0


def test_a_new_speed_applies_from_the_next_frame():
    clock = FakeClock()
    paced = PacedSource(file_source(6, fps=10.0), 1.0, clock=clock, sleep=clock.sleep)
    assert paced.read(0.2).index == 0
    paced.set_speed(4.0)
    delivered = read_all(paced, clock)
    assert [at for _, at in delivered] == pytest.approx([0.025 * step for step in range(5)])
    with pytest.raises(ValueError, match="positive"):
        paced.set_speed(0.0)


def test_a_seek_drops_the_frame_held_back_and_starts_the_clock_again():
    clock = FakeClock()
    paced = PacedSource(file_source(10, fps=10.0), 1.0, clock=clock, sleep=clock.sleep)
    assert paced.read(0.01).index == 0
    with pytest.raises(SourceTimeout):
        paced.read(0.01)  # frame 1 is held back until it is due
    clock.now += 30.0  # thinking about where to jump: no frame counts as late for it
    assert paced.seek(6)
    sought_at = clock.now
    delivered = read_all(paced, clock)
    assert [index for index, _ in delivered] == [6, 7, 8, 9] and paced.dropped_frames == 0
    assert [at - sought_at for _, at in delivered] == pytest.approx([0.1 * step for step in range(4)])
    assert not paced.seek(10)
