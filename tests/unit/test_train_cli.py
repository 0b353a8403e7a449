"""`mindupload train --config-json ...`: rendering the config again on the training machine needs every path."""

from __future__ import annotations

from mindupload.cli import main


def test_config_json_without_the_paths_is_a_one_line_error(capsys, tmp_path):
    code = main(
        [
            "train",
            "--axolotl-config",
            str(tmp_path / "a.yaml"),
            "--output-dir",
            str(tmp_path / "out"),
            "--config-json",
            "{}",
            "--train",
            str(tmp_path / "train.jsonl"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1] == (
        "mindupload: error: train --config-json also needs --base-model, --validation, --work-dir, --prepared-dir."
    )
    assert not (tmp_path / "out").exists()


def test_training_summary_records_the_start_eval_loss_and_the_mean_train_loss():
    from mindupload.training.train import training_summary

    history = [
        {"eval_loss": 3.9, "step": 0},
        {"loss": 4.0, "step": 1},
        {"loss": 3.0, "step": 2},
        {"eval_loss": 3.5, "step": 2},
        {"loss": 2.0, "step": 3},
        {"eval_loss": 3.6, "step": 3},
    ]
    state = {"global_step": 3, "epoch": 0.5, "log_history": history}
    summary = training_summary({"base_model": "/m", "bf16": "auto"}, state, None)
    assert summary["train_loss"] == 3.0 and summary["last_step_train_loss"] == 2.0
    assert summary["eval_loss_at_start"] == 3.9 and summary["eval_loss"] == 3.6
    assert (summary["best_eval_loss"], summary["best_eval_step"]) == (3.5, 2)
