"""`--backend auto`: candidates from the hardware, the OKS gate, eager at once and a swap between calls, the cache,
and the gate's promise in AP on the trained test network's own validation set."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from pose.backends import auto as auto_module
from pose.backends import backend_summary
from pose.backends.agreement import OKS_MIN, ReferencePeople, agreement, agrees, oks_to_reference
from pose.backends.hardware import auto_candidates
from tests.sample_data import DATA

TRAINED_CONFIG = DATA / "trained" / "synthetic_w16_64x48.yaml"
TRAINED_WEIGHTS = DATA / "trained" / "synthetic_w16_64x48.pth"


def test_candidates_follow_the_hardware():
    vnni = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
    assert auto_candidates("cpu", vnni) == ("onnxruntime-int8", "bf16", "onnxruntime")
    # without int8 dot products int8 may or may not be faster: fp32 first, then int8; bf16 would be emulated
    assert auto_candidates("cpu", frozenset({"avx2"})) == ("onnxruntime", "onnxruntime-int8")
    assert auto_candidates("cpu", frozenset({"avx2", "avx_vnni"})) == ("onnxruntime-int8", "onnxruntime")
    assert auto_candidates("cuda:0", frozenset()) == ("fp16",)
    assert "torch-compile" not in auto_candidates("cpu", vnni)  # minutes of compiling for a tie with ONNX Runtime


def _people(count: int, areas, labeled=None) -> ReferencePeople:
    return ReferencePeople(np.zeros((count, 3, 8, 6), np.float32), np.ones(count), np.asarray(areas, np.float64),
                           labeled, "test")


def test_oks_to_reference_is_cocos_formula_over_labeled_keypoints():
    reference = np.zeros((2, 17, 2))
    moved = reference.copy()
    moved[:, 0, 0] = 3.0  # the nose 3 px off (sigma 0.026)
    area = 400.0
    labeled = np.ones((2, 17), bool)
    labeled[1, 0] = False  # the second person's nose is not labeled: it does not count
    oks = oks_to_reference(reference, moved, _people(2, [area, area], labeled))
    nose = np.exp(-9.0 / (2 * area * (2 * 0.026) ** 2))
    assert oks[0] == pytest.approx((16 + nose) / 17)
    assert oks[1] == pytest.approx(1.0)
    metrics = agreement(reference, moved, _people(2, [area, area], labeled))
    assert metrics["oks_min"] == pytest.approx(oks[0]) and metrics["people"] == 2
    assert metrics["max_px"] == pytest.approx(3.0)


def test_gate_scales_with_the_persons_size():
    """The same pixel error is a small slip on a large person and a miss on a small one."""
    reference = np.zeros((1, 17, 2))
    moved = reference + 2.0
    assert agrees(agreement(reference, moved, _people(1, [200.0 * 400.0])))
    assert not agrees(agreement(reference, moved, _people(1, [20.0 * 40.0])))


def test_reference_people_skip_people_without_labeled_keypoints():
    from pose.backends.agreement import reference_people

    people = reference_people((48, 64))
    # tests/data/coco_mini: 14 annotated people, 2 of them with no labeled keypoint (COCO AP ignores them too)
    assert len(people) == 12 and people.labeled.shape == (12, 17) and people.labeled.any(axis=1).all()
    assert np.all(people.areas > 0) and np.all(people.px_per_input_px > 0)


class _Constant:
    """A runtime returning heatmaps filled with `value` (which one ran is visible in the output)."""

    def __init__(self, value: float):
        self.value = value
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        return np.full((len(batch), 2, 4, 3), self.value, np.float32)


def test_auto_runtime_runs_eager_until_the_choice_then_swaps_between_calls():
    eager, fast = _Constant(0.0), _Constant(1.0)
    choice_made = threading.Event()
    record = {"backend": "onnxruntime", "reason": "2.00x eager", "candidates": [
        {"backend": "onnxruntime", "runs": True, "agrees": True, "oks_mean": 0.999, "oks_min": 0.99, "mean_px": 0.01,
         "within_2px": 1.0, "speedup": {"1": 1.5, "8": 2.0}}]}

    def wait_for_choice(on_interim):
        choice_made.wait(10)
        return record

    runtime = auto_module.AutoRuntime(eager, max_batch=8, load_choice=lambda chosen: fast,
                                      wait_for_choice=wait_for_choice)
    batch = np.zeros((3, 3, 16, 12), np.float32)
    assert runtime(batch).max() == 0.0 and runtime(batch).max() == 0.0
    assert runtime.describe()["backend"] == "torch"
    choice_made.set()
    assert runtime.settled(10)
    assert runtime.describe()["backend"] == "onnxruntime"  # what the next call runs
    assert runtime(batch).max() == 1.0
    described = runtime.describe()
    assert described["backend"] == "onnxruntime"
    assert described["history"] == [{"backend": "torch", "from_call": 0}, {"backend": "onnxruntime", "from_call": 2}]
    assert described["agreement"]["oks_mean"] == 0.999 and described["speedup"]["8"] == 2.0
    summary = backend_summary(described)
    assert "onnxruntime (auto; eager fp32 for the first 2 network calls" in summary and "2.00x eager at 8" in summary


def test_a_failed_build_leaves_eager_running():
    eager = _Constant(0.0)
    runtime = auto_module.AutoRuntime(eager, max_batch=8, load_choice=lambda chosen: pytest.fail("nothing to load"),
                                      wait_for_choice=lambda on_interim: None)
    assert runtime.settled(10)
    assert runtime(np.zeros((1, 3, 16, 12), np.float32)).max() == 0.0
    assert runtime.describe()["backend"] == "torch"


def test_an_interim_choice_runs_until_a_better_one_is_ready():
    runtimes = {"onnxruntime": _Constant(1.0), "onnxruntime-int8": _Constant(2.0)}
    interim_taken, final_ready = threading.Event(), threading.Event()

    def record(backend, final):
        return {"backend": backend, "reason": backend, "candidates": [], "final": final}

    def wait_for_choice(on_interim):
        on_interim(record("onnxruntime", False))
        interim_taken.set()
        final_ready.wait(10)
        return record("onnxruntime-int8", True)

    runtime = auto_module.AutoRuntime(_Constant(0.0), max_batch=8, load_choice=lambda chosen: runtimes[chosen["backend"]],
                                      wait_for_choice=wait_for_choice)
    batch = np.zeros((1, 3, 16, 12), np.float32)
    assert interim_taken.wait(10)
    assert runtime(batch).max() == 1.0  # the interim choice runs while the better one builds
    final_ready.set()
    assert runtime.settled(10)
    assert runtime(batch).max() == 2.0
    assert [entry["backend"] for entry in runtime.describe()["history"]][-2:] == ["onnxruntime", "onnxruntime-int8"]


@pytest.fixture
def trained_model():
    import pose

    experiment = pose.load_config(TRAINED_CONFIG)
    model = pose.build_model(experiment)
    pose.load_weights(model, TRAINED_WEIGHTS)
    return experiment, model.eval()


def test_the_choice_is_measured_once_then_read_from_the_cache(trained_model, tmp_path, monkeypatch):
    experiment, model = trained_model
    # Eager fp32 against itself: agrees, but is not faster, so the choice is eager; no build needed.
    monkeypatch.setattr(auto_module, "auto_candidates", lambda device: ("torch",))
    build = dict(device="cpu", max_batch=4, input_size=tuple(experiment.model.image_size), weights_id="test-weights",
                 cache_dir=tmp_path, config=experiment)
    first = auto_module.auto_runtime(model, wait=True, **build)
    assert first.describe()["backend"] == "torch"
    [decision] = tmp_path.glob("auto-*.json")
    record = json.loads(decision.read_text())
    assert record["gate"]["oks_min"] == OKS_MIN and record["candidates"][0]["oks_mean"] == pytest.approx(1.0)

    def measuring_again(*args, **kwargs):
        raise AssertionError("the cached choice should have been used")

    monkeypatch.setattr(auto_module, "measure_candidates", measuring_again)
    second = auto_module.auto_runtime(model, **build)
    assert second.settled(0) and second.describe()["reason"] == record["reason"]


def test_a_cached_choice_runs_from_the_first_call():
    fast = _Constant(1.0)
    runtime = auto_module.AutoRuntime(_Constant(0.0), max_batch=8, load_choice=lambda chosen: fast)
    runtime.set_choice({"backend": "onnxruntime", "reason": "cached", "candidates": []})
    assert runtime(np.zeros((1, 3, 16, 12), np.float32)).max() == 1.0
    assert runtime.describe()["history"] == [{"backend": "onnxruntime", "from_call": 0}]
    assert backend_summary(runtime.describe()) == "onnxruntime (auto)"


def test_a_later_candidate_replaces_the_choice_only_when_enough_faster(trained_model, monkeypatch):
    from pose.backends.agreement import reference_people
    from pose.runtime import TorchRuntime

    experiment, model = trained_model

    class Named(TorchRuntime):  # eager itself, so it agrees exactly; the speed is made up per name
        def __init__(self, name):
            super().__init__(model)
            self.name = name

    speed = {"a": 2.0, "b": 2.1, "c": 4.0, "d": 0.9}
    monkeypatch.setattr(auto_module, "make_runtime", lambda name, model, **kwargs: Named(name))
    monkeypatch.setattr(auto_module, "speedups",
                        lambda eager, runtime, batches: {size: speed[runtime.name] for size in batches})
    choices = []
    record = auto_module.measure_candidates(
        model, candidates=("a", "b", "c", "d"), device="cpu", max_batch=4,
        input_size=tuple(experiment.model.image_size), weights_id="x", cache_dir=None, calibration=None,
        people=reference_people(tuple(experiment.model.image_size)), progress=lambda text: None,
        on_choice=choices.append)
    assert [choice["backend"] for choice in choices] == ["a", "c"]  # b is only 1.05x a; d is slower than eager
    assert record["backend"] == "c" and record["final"] and not choices[0]["final"]
    assert "b (not enough faster" in record["reason"] and "d (not enough faster" in record["reason"]


def test_a_second_process_waits_for_the_first_ones_build(tmp_path):
    decision = tmp_path / "auto-x.json"
    build = auto_module._BackgroundBuild(decision)
    assert build.claim()
    assert not auto_module._BackgroundBuild(decision).claim()  # this process holds it: alive
    build.lock.write_text("999999999")  # a holder that died
    assert auto_module._BackgroundBuild(decision).claim()


@pytest.mark.slow
def test_background_build_swaps_in_a_faster_agreeing_backend(trained_model, tmp_path):
    """The real thing: a child process builds ONNX Runtime for the trained network while eager answers."""
    experiment, model = trained_model
    input_size = tuple(experiment.model.image_size)
    runtime = auto_module.auto_runtime(model, device="cpu", max_batch=8, input_size=input_size,
                                       weights_id="background-test", cache_dir=tmp_path, config=experiment)
    batch = np.zeros((2, 3, input_size[1], input_size[0]), np.float32)
    eager_output = runtime(batch)  # at once, eagerly
    assert runtime.describe()["history"][0]["backend"] == "torch"
    assert runtime.settled(600), "the background build did not finish"
    runtime(batch)
    described = runtime.describe()
    record = json.loads(next(tmp_path.glob("auto-*.json")).read_text())
    assert described["backend"] == record["backend"]
    tried = {row["backend"]: row for row in record["candidates"]}
    assert "onnxruntime" in tried and tried["onnxruntime"]["oks_mean"] > 0.999  # fp32 ONNX is exact
    np.testing.assert_allclose(runtime(batch), eager_output, atol=1e-3 if described["backend"] != "onnxruntime-int8" else 1)
    assert not list(tmp_path.glob("*.building")) and not list(tmp_path.glob("auto-build-*"))
    runtime.close()


@pytest.mark.slow
def test_gate_accepts_int8_and_bf16_and_rejects_a_damaged_int8_by_their_ap(tmp_path):
    """In the trained network's own distribution: int8 (person-crop calibration) and bf16 lose <= 0.5 AP and pass
    the OKS gate; int8 whose calibration ranges are shrunk (activations saturate) loses >= 2 AP and fails it."""
    from evaluation.backend_accuracy import accuracy_rows, people_of, synthetic_sets
    from pose.backends import clone_network, make_runtime
    from pose.backends.onnx import OnnxRuntimeSession, model_path, quantize_int8
    from pose.estimator import PoseEstimator
    from pose.runtime import TorchRuntime

    sets = synthetic_sets(tmp_path / "data")
    estimator = PoseEstimator.from_config(TRAINED_CONFIG, weights=TRAINED_WEIGHTS, backend="torch", batch_size=32,
                                          flip_test=True)
    size = estimator.input_size
    people = people_of(sets.reference, size)
    calibration = people_of(sets.calibration, size).crops
    calibration = np.concatenate([calibration, calibration[..., ::-1]])
    model = estimator.runtime.model
    int8 = make_runtime("onnxruntime-int8", model, input_size=size, weights_id="gate-test", cache_dir=tmp_path,
                        calibration=calibration)
    damaged = OnnxRuntimeSession(quantize_int8(model_path(tmp_path, "gate-test", (size[1], size[0]), "fp32"),
                                               tmp_path / "damaged.onnx", calibration * 0.2))
    bf16 = TorchRuntime(clone_network(model), dtype="bfloat16", channels_last=True)
    rows = {row["backend"]: row for row in accuracy_rows(
        estimator, {"int8": int8, "bf16": bf16, "damaged int8": damaged}, people, sets.validation)}
    assert rows["torch"]["ap"] > 40  # the network has learned something: AP 43.5 when it was made
    for name in ("int8", "bf16"):
        assert rows[name]["ap_loss"] <= 0.5, rows[name]
        assert agrees(rows[name]), rows[name]
    assert rows["damaged int8"]["ap_loss"] >= 2.0, rows["damaged int8"]
    assert not agrees(rows["damaged int8"]), rows["damaged int8"]


def test_long_build_steps_say_what_they_do_and_how_long_they_took(caplog):
    import logging

    from pose.backends.progress import elapsed

    with caplog.at_level(logging.INFO, logger="pose.backends.progress"), elapsed("exporting", "seconds"):
        pass
    assert [record.getMessage() for record in caplog.records][0] == "exporting (seconds)"
    assert caplog.records[-1].getMessage().startswith("exporting: done in ")
