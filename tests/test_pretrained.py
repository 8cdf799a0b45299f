"""Every shipped checkpoint loads (sha256 checked, weights only) and reproduces its recorded
golden metrics; bad names and tampered files are refused."""

import shutil
from pathlib import Path

import pytest
from lightning.pytorch import Trainer

from kruzoo import pretrained
from kruzoo.cli import main

REPO = Path(__file__).resolve().parents[1]

NAMES = pretrained.list()


def test_the_zoo_is_not_empty():
    assert NAMES, "no pretrained checkpoints are shipped"


@pytest.mark.parametrize("name", NAMES)
def test_golden_metrics(name, request):
    entry = pretrained.info(name)
    model = pretrained.load(name)
    assert not model.training and model.pretrained_info == entry
    assert model.parameter_counts() == entry["parameters"]
    overrides = {}
    if "data_dir" in entry["data"].get("init_args", {}):
        real = request.getfixturevalue("real_data_dir")
        overrides["data_dir"] = str(real / Path(entry["data"]["init_args"]["data_dir"]).name)
        overrides["download"] = False
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      limit_test_batches=entry["golden"]["test_batches"])
    (metrics,) = trainer.test(model, pretrained.datamodule(name, **overrides), verbose=False)
    for key, expected in entry["golden"]["metrics"].items():
        assert float(metrics[key]) == pytest.approx(expected, rel=1e-4, abs=1e-7), key


def test_unknown_name():
    with pytest.raises(ValueError, match=r"unknown pretrained checkpoint 'nope'; available: "):
        pretrained.load("nope")


@pytest.mark.parametrize("name", NAMES[:1])
def test_tampered_file_is_refused(name, tmp_path, monkeypatch):
    shutil.copy(pretrained.INDEX, tmp_path / "index.json")
    file = tmp_path / pretrained.info(name)["file"]
    shutil.copy(pretrained.FOLDER / file.name, file)
    with open(file, "r+b") as f:
        f.seek(-10, 2)
        f.write(b"0123456789")
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    monkeypatch.setattr(pretrained, "INDEX", tmp_path / "index.json")
    with pytest.raises(ValueError, match=rf"{name}.*has sha256 [0-9a-f]{{64}}, expected"):
        pretrained.load(name)


@pytest.mark.parametrize("name", [n for n in NAMES if n == "kru_copy_t1000"])
def test_cli_evaluates_a_pretrained_name(name, tmp_path):
    entry = pretrained.info(name)
    cli = main(["test", "--config", str(REPO / entry["config"]), "--ckpt_path", f"pretrained:{name}",
                "--data.test_size", "40", "--data.batch_size", "20", "--trainer.logger", "false",
                "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)])
    metrics = cli.trainer.callback_metrics
    assert float(metrics["test/acc"]) == 1.0 and float(metrics["test/loss"]) < 0.002
