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
