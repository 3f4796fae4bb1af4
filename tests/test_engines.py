"""The Ray engine against the local one: same outputs and summary, faults contained, Ctrl-C and resume.

The Ray tests run on a local Ray instance with 2 CPUs, started once for the
module and stopped at its end (only on this machine, no cluster).
"""

from __future__ import annotations

import _thread
import functools
import json
import logging
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

import main
from cli.options import engine_from_args
from core.skeletons import COCO_KEYPOINT_NAMES, COCO_SKELETON
from pipeline.batch import TrackOptions, discover_inputs, run_tracking
from pipeline.engines import (
    BatchWork,
    EngineReport,
    LocalEngine,
    RayEngine,
    Task,
    WorkerStats,
    _RayRun,
    start_local_ray,
)
from pipeline.work import Models, VideoResult
from tests.pipeline_fakes import FakeDetector, FakeEstimator, FakeTracker
from tests.sample_data import SAMPLE_VIDEO, TINY_MODEL_ARGS
from tests.test_batch_faults import write_video

ROOT = Path(__file__).parent.parent


class _CocoFakeEstimator(FakeEstimator):
    keypoint_names = COCO_KEYPOINT_NAMES
    skeleton = COCO_SKELETON


def fake_models(per_frame_s: float) -> Models:
    """Module-level, so that a partial of it pickles: each Ray worker builds its own fakes."""
    return Models(FakeDetector(), _CocoFakeEstimator(per_frame_s=per_frame_s), FakeTracker())


def without_timings(document):
    """A JSON output without its per-frame timings (the only part that differs from run to run)."""
    if isinstance(document, dict):
        return {key: without_timings(value) for key, value in document.items() if key != "timings_ms"}
    if isinstance(document, list):
        return [without_timings(value) for value in document]
    return document


def assert_same_outputs(expected: Path, actual: Path) -> None:
    names = sorted(p.relative_to(expected).as_posix() for p in expected.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(actual).as_posix() for p in actual.rglob("*") if p.is_file())
    for name in names:
        if name.endswith(".json"):
            assert without_timings(json.loads((actual / name).read_text())) == \
                without_timings(json.loads((expected / name).read_text())), name
        else:
            assert (actual / name).read_bytes() == (expected / name).read_bytes(), name


# -- without Ray ----------------------------------------------------------------------------------


def test_ray_flags_need_the_ray_engine_and_the_local_engine_stays_the_default():
    parse = main.build_parser("track").parse_args
    assert isinstance(engine_from_args(parse(["track", "in.mp4"])), LocalEngine)
    for flags in (["--workers", "2"], ["--gather"], ["--address", "auto"], ["--gpus-per-worker", "0.5"]):
        with pytest.raises(ValueError, match="only with --engine ray"):
            engine_from_args(parse(["track", "in.mp4", *flags]))
    engine = engine_from_args(parse(["track", "in.mp4", "--engine", "ray", "--workers", "3", "--gather",
                                     "--device", "cpu"]))
    assert isinstance(engine, RayEngine) and engine.workers == 3 and engine.gather
    assert engine.gpus_per_worker == 0  # --device cpu: no GPU requested
    assert main.main(["track", str(SAMPLE_VIDEO), "--workers", "2", *TINY_MODEL_ARGS]) == 2


@pytest.mark.parametrize("command", [["track"], ["posetrack", "run"]])
def test_help_says_where_the_outputs_are_written(command, capsys):
    with pytest.raises(SystemExit):
        main.build_parser(command[0]).parse_args([*command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for text in ("--engine {local,ray}", "--address", "--workers", "--gpus-per-worker", "--cpus-per-worker",
                 "--gather", "write the outputs themselves to --out", "shared filesystem", "hrtrack[ray]"):
        assert text in help_text


def test_the_largest_videos_start_first_and_equal_sizes_keep_their_order():
    tasks = [Task("a", None, frames=10), Task("b", None, frames=300), Task("c", None, frames=10),
             Task("d", None, frames=0), Task("e", None, frames=50)]
    run = _RayRun(None, RayEngine(), tasks, BatchWork(lambda: None, lambda *a: None), Path("."), 0.0)
    assert [task.name for task in run.queue] == ["b", "e", "a", "c", "d"]


def test_the_engine_report_gives_total_and_per_worker_throughput():
    report = EngineReport("ray", results=[VideoResult("a", "done", 100, 10.0), VideoResult("b", "failed")],
                          workers=[WorkerStats("1 (pid 7 on n1)", 7, 1, 100, 10.0),
                                   WorkerStats("2 (pid 8 on n2)", 8, 1, 0, 0.0, died=True)],
                          setup_s=5.0, wall_s=25.0, retried={"a": 1})
    lines = report.lines()
    assert lines[0].startswith("ray engine, 2 worker(s): 2 video(s), 100 frames in 20.0 s after 5.0 s")
    assert "(0.10 videos/s, 5.0 frames/s)" in lines[0]
    assert lines[1] == "  worker 1 (pid 7 on n1): 1 video(s), 100 frames in 10.0 s (10.0 fps)"
    assert lines[2].endswith(", died") and lines[3] == "  retried  a: its worker died 1 time(s)"


# -- on a local Ray instance ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    # Workers start in this process's working folder; the project root must be importable there.
    previous = os.getcwd()
    os.chdir(ROOT)
    start_local_ray(ray, num_cpus=2)
    try:
        yield ray
    finally:
        ray.shutdown()
        os.chdir(previous)


@pytest.fixture(scope="module")
def detections(tmp_path_factory) -> Path:
    """Two people on each of the first 12 frames, keyed by frame index."""
    entries = [{"image_id": i, "category_id": 1, "bbox": [300 + 5 * i, 150, 200, 450], "score": 0.95}
               for i in range(12)]
    entries += [{"image_id": i, "category_id": 1, "bbox": [700, 200, 180, 400], "score": 0.8} for i in range(12)]
    path = tmp_path_factory.mktemp("detections") / "detections.json"
    path.write_text(json.dumps(entries))
    return path


def _summary_without_times(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if not line.startswith(("ray engine", "  worker "))]
    return [re.sub(r"\d+ frames in [\d.]+ s \([\d.]+ fps\)", "N frames", line) for line in lines]


@pytest.mark.slow
def test_good_corrupt_and_empty_videos_give_the_local_engines_outputs_and_summary(
        tmp_path, ray_instance, detections, capsys):
    import torch

    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE_VIDEO, inputs / "good.mp4")
    write_video(inputs / "longer.avi", 8, size=(320, 240))
    (inputs / "sub" / "bad.mp4").write_bytes(b"\x00\x01 this is not a video " * 100)
    (inputs / "empty.mp4").write_bytes(b"")
    command = ["track", str(inputs), "--formats", "json,csv,video", "--det-file", str(detections),
               "--det-image-key", "index", *TINY_MODEL_ARGS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the 2 Ray workers on 2 CPUs: float sums then match to the bit
    try:
        local_status = main.main([*command, "--out", str(tmp_path / "local")])
    finally:
        torch.set_num_threads(threads)
    local = capsys.readouterr().out
    ray_status = main.main([*command, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"])
    ray_out = capsys.readouterr().out
    assert local_status == ray_status == 1
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == [
        "good.csv", "good.json", "good.mp4", "longer.csv", "longer.json", "longer.mp4"]
    assert _summary_without_times(ray_out) == _summary_without_times(local)
    assert "FAILED   sub/bad: " in ray_out and "FAILED   empty: " in ray_out
    assert re.search(r"^ray engine, 2 worker\(s\): 4 video\(s\), 13 frames", ray_out, re.M)
    assert len(re.findall(r"^  worker \d \(pid \d+ on .+\): \d video\(s\)", ray_out, re.M)) == 2


def _wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def _fake_inputs(folder: Path) -> None:
    write_video(folder / "long.avi", 30)
    write_video(folder / "short1.avi", 4, seed=1)
    write_video(folder / "short2.avi", 4, seed=2)


@pytest.mark.slow
def test_a_worker_killed_mid_video_has_its_video_done_by_a_retry(tmp_path, ray_instance):
    _fake_inputs(tmp_path / "in")
    inputs = discover_inputs(tmp_path / "in")
    options = TrackOptions(progress=False)
    build = functools.partial(fake_models, 0.1)
    engine = RayEngine(workers=2)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(
        run=run_tracking(inputs, tmp_path / "ray", ("json", "csv"), build, options, engine=engine)))
    runner.start()
    _wait_for(lambda: "long" in engine.running() and (tmp_path / "ray" / "long.json.part").exists())
    killed = engine.running()["long"]
    # The workers do the work: they keep this process's priority (Ray would run them 15 nice levels lower).
    assert os.getpriority(os.PRIO_PROCESS, killed) == os.getpriority(os.PRIO_PROCESS, 0)
    os.kill(killed, signal.SIGKILL)
    runner.join(timeout=180)
    summary, report = outcome["run"]
    assert summary.done == ["long", "short1", "short2"] and summary.exit_status == 0
    assert report.retried == {"long": 1}
    assert [worker.died for worker in report.workers if worker.pid == killed] == [True]
    assert not list((tmp_path / "ray").glob("*.part"))

    local, _ = run_tracking(inputs, tmp_path / "local", ("json", "csv"), build, options)
    assert local.done == summary.done
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_ctrl_c_leaves_no_final_outputs_of_unfinished_videos_and_the_rerun_resumes(tmp_path, ray_instance):
    _fake_inputs(tmp_path / "in")
    inputs = discover_inputs(tmp_path / "in")
    out = tmp_path / "out"
    options = TrackOptions(progress=False)
    build = functools.partial(fake_models, 0.1)

    def interrupt_after_a_short_one() -> None:
        _wait_for(lambda: (out / "short1.json").exists() or (out / "short2.json").exists())
        _thread.interrupt_main()

    watcher = threading.Thread(target=interrupt_after_a_short_one, daemon=True)
    watcher.start()
    summary, _ = run_tracking(inputs, out, ("json", "csv"), build, options, engine=RayEngine(workers=2))
    watcher.join(timeout=5)
    assert summary.interrupted and summary.exit_status == 130
    assert "long" not in summary.done and not (out / "long.json").exists() and not (out / "long.csv").exists()
    finished = {name: (out / f"{name}.json").stat().st_mtime_ns for name in summary.done}
    assert finished and all((out / f"{name}.csv").is_file() for name in finished)

    # The rerun gathers the outputs to this process (--gather) and redoes only what was not finished.
    rerun, report = run_tracking(inputs, out, ("json", "csv"), build, options,
                                 engine=RayEngine(workers=2, gather=True))
    assert sorted(rerun.skipped) == sorted(finished) and rerun.exit_status == 0
    assert "long" in rerun.done and sorted(rerun.done) == sorted({"long", "short1", "short2"} - set(finished))
    assert {name: (out / f"{name}.json").stat().st_mtime_ns for name in finished} == finished
    assert json.loads((out / "long.json").read_text())["num_frames"] == 30
    assert not list(out.glob("*.part"))


@pytest.mark.slow
def test_posetrack_run_on_ray_writes_the_local_engines_prediction_files(tmp_path, ray_instance, posetrack_root_with_a_broken_video,
                                                                      caplog):
    import torch

    root = posetrack_root_with_a_broken_video
    command = ["posetrack", "run", "--data", str(root), "--use-gt-boxes", *TINY_MODEL_ARGS]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray worker here: the full-precision scores then match to the bit
    try:
        assert main.main([*command, "--out", str(tmp_path / "local")]) == 1
    finally:
        torch.set_num_threads(threads)
    with caplog.at_level(logging.INFO):
        assert main.main([*command, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]) == 1
    assert "3 videos: 2 written, 0 already complete, 1 failed" in caplog.text
    written = sorted(p.name for p in (tmp_path / "ray").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "local").iterdir()) == [
        "003418_mpii_test.json", "012834_mpii_test.json"]
    assert all((tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes() for name in written)


@pytest.mark.slow
def test_models_that_cannot_be_built_on_the_workers_give_exit_status_2(tmp_path, ray_instance, detections, caplog):
    # A file that exists (a missing one is refused before any worker starts) but holds no weights.
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    command = ["track", str(SAMPLE_VIDEO), "--out", str(tmp_path / "out"), "--engine", "ray", "--workers", "1",
               "--det-file", str(detections), "--det-image-key", "index", *TINY_MODEL_ARGS,
               "--pose-weights", str(tmp_path / "broken.pt")]
    with caplog.at_level(logging.ERROR):
        assert main.main(command) == 2
    assert "cannot set up the models" in caplog.text and "broken.pt: not a weights file" in caplog.text
    assert not (tmp_path / "out" / "000001_mpiinew_test.json").exists()
