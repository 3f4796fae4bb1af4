"""`main.py train` teaches a small HRNet to find keypoints: validation AP far above what needs no learning."""

from __future__ import annotations

import pytest

import main as entry
from tests.training_runs import SMALL_CONFIG, mean_pose_results, read_log, synthetic_set, torch_threads, train_command

EPOCHS = 4
TRAIN_IMAGES, VAL_IMAGES = 512, 64
MARGIN_AP = 0.1
# The official schedule in short: lr x 0.1 for the last epoch (as at 170 and 200 of 210 epochs),
# which steadies the last validation of a run this short.
LAST_EPOCH_DECAY = ("TRAIN.LR_STEP", f"[{EPOCHS}]")


@pytest.mark.slow
def test_training_reaches_validation_ap_well_above_chance(tmp_path):
    """Train the W16 48x64 config for 4 epochs on 512 stick figures through `main.py train`
    (official recipe, lr x 0.1 for the last epoch, validation every epoch with `evaluation.coco`), then compare the best
    validation AP with two floors measured on the same 64 validation figures and boxes:

    - the untrained network (the trainer's own initialisation, seed 0): what the
      architecture and the evaluation give before any learning;
    - the mean pose placed in each ground-truth box: the best a predictor can do from
      the box alone without looking at the pixels. The boxes are the joints'
      padded extent, so this floor is far from zero (about 0.12 AP): the torso and
      head sit at nearly fixed places in the box, only the limbs move.

    Both are chance in the sense that matters: neither uses what the pixels show of
    this figure's pose. The trained network must beat the higher one by MARGIN_AP.
    The best checkpoint, reloaded with `pose.load_weights`, must give the logged AP.
    """
    import pose
    from cli.train import make_coco_validator
    from evaluation.coco import load_annotation, score_results
    from pose.hrnet import build_model
    from pose.training.trainer import seed_everything

    data = synthetic_set(tmp_path / "data", TRAIN_IMAGES, VAL_IMAGES)
    out = tmp_path / "run"
    config = pose.load_config(SMALL_CONFIG, [f"DATASET.ROOT={data}"])
    val_ann, val_images = data / "annotations" / "person_keypoints_val.json", data / "images" / "val"
    validate = make_coco_validator(config, val_ann, val_images, "cpu", progress=False)

    with torch_threads(1):
        seed_everything(0)
        untrained = build_model(config)
        untrained.init_weights()
        untrained_ap = validate(untrained.eval(), -1)["AP"]
        mean_pose_ap = score_results(
            mean_pose_results(load_annotation(data / "annotations" / "person_keypoints_train.json"),
                              load_annotation(val_ann)),
            load_annotation(val_ann)).stats["AP"]

        assert entry.main(train_command(SMALL_CONFIG, data, out, EPOCHS, overrides=LAST_EPOCH_DECAY)) == 0

        log = read_log(out / "log.csv")
        aps = [float(row["val_value"]) for row in log]
        best_ap = max(aps)
        reloaded = build_model(config)
        pose.load_weights(reloaded, out / "model_best.pth")
        reloaded_ap = validate(reloaded.eval(), EPOCHS)["AP"]

    floor = max(untrained_ap, mean_pose_ap)
    print(f"validation AP per epoch {[round(ap, 3) for ap in aps]}; floors: untrained {untrained_ap:.3f}, "
          f"mean pose in the box {mean_pose_ap:.3f}")
    assert [int(row["epoch"]) for row in log] == list(range(EPOCHS))
    assert all(row["val_metric"] == "AP" for row in log)
    assert 0.05 < mean_pose_ap < 0.3, "the box-only floor is not the one this test was designed around"
    assert best_ap > floor + MARGIN_AP, (aps, untrained_ap, mean_pose_ap)
    assert float(log[-1]["train_loss"]) < float(log[0]["train_loss"])
    assert reloaded_ap == pytest.approx(best_ap, abs=1e-9)
    assert (out / "curve.png").stat().st_size > 0 and (out / "final_state.pth").is_file()
