"""`mindupload install-profile`: where `snakemake --profile <name>` looks (the user's Snakemake config folder)."""

from __future__ import annotations

import pytest

from mindupload.cli import main
from mindupload.errors import UserError
from mindupload.remote import profiles


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def test_the_profile_lands_in_the_folder_snakemake_searches(config_home, monkeypatch):
    from snakemake.common import get_appdirs

    monkeypatch.chdir(profiles.Path(__file__).parents[2])
    assert main(["install-profile", "runpod"]) == 0
    installed = config_home / "snakemake/runpod/config.yaml"
    assert installed.read_text() == profiles.Path("profiles/runpod/config.yaml").read_text()
    assert profiles.Path(get_appdirs().user_config_dir) / "runpod" == installed.parent


def test_an_installed_profile_is_kept_unless_forced(config_home, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.yaml").write_text("jobs: 1\n")
    target = profiles.install("mine", source)
    (target / "config.yaml").write_text("jobs: 2  # the user's edit\n")
    with pytest.raises(UserError, match="exists already"):
        profiles.install("mine", source)
    profiles.install("mine", source, force=True)
    assert (target / "config.yaml").read_text() == "jobs: 1\n"


def test_a_folder_without_a_profile_is_a_clear_error(config_home, tmp_path):
    with pytest.raises(UserError, match="no profile there"):
        profiles.install("runpod", tmp_path / "nowhere")
