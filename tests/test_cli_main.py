"""cli/main.py: the one CLI setup (build_cli), the extra commands it dispatches, and the one private
Lightning hook it overrides (``_parse_ckpt_path``), pinned: Lightning still calls it where the
override assumes, the reason for it still holds, and a resume keeps the run's optimizer."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from lightning.pytorch.cli import LightningCLI

from kruzoo.cli.main import KruzooCLI, build_cli, main

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "--config",
    str(REPO / "configs/adding/rnn.yaml"),
    "--model.init_args.hidden_size",
    "4",
    "--data.seq_len",
    "5",
    "--data.train_size",
    "16",
    "--data.val_size",
    "4",
    "--data.batch_size",
    "4",
    "--trainer.val_check_interval",
    "1.0",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
]


def test_build_cli_parses_a_config_without_running():
    cli = build_cli([*SMALL, "--trainer.logger", "false"], run=False)
    assert type(cli) is KruzooCLI
    assert type(cli.model).__name__ == "RNN" and cli.model.hparams.hidden_size == 4
    assert cli.datamodule.seq_len == 5 and cli.model.task.input_size == 2  # the task linked from the data


def test_lightning_calls_parse_ckpt_path_between_parsing_and_instantiation():
    """The override below only works if LightningCLI still calls this hook, after parse_arguments
    and before the classes are built: a Lightning upgrade that renames or moves it fails here."""
    source = inspect.getsource(LightningCLI.__init__)
    order = [
        source.index(call)
        for call in ("self.parse_arguments(", "self._parse_ckpt_path()", "self.before_instantiate_classes()")
    ]
    assert order == sorted(order)
    assert KruzooCLI._parse_ckpt_path is not LightningCLI._parse_ckpt_path


def _fit(root: Path, *extra: str):
    return main(["fit", "--trainer.default_root_dir", str(root), *SMALL, *extra])


def test_lightnings_parse_ckpt_path_would_replace_the_configs_optimizer(tmp_path, monkeypatch):
    """The reason for the override: Lightning's version re-parses the model from the checkpoint's
    hyperparameters, which lack the optimizer: the configured RMSprop becomes the default Adam."""
    _fit(tmp_path, "--trainer.max_steps", "2")
    (ckpt,) = tmp_path.glob("runs/AddingDataModule-RNN/version_0/checkpoints/last.ckpt")

    class Parsed(Exception):
        pass

    seen = {}

    def stop(cli):
        seen["cli"] = cli
        raise Parsed

    monkeypatch.setattr(KruzooCLI, "before_instantiate_classes", stop)
    with pytest.raises(Parsed):
        _fit(tmp_path, "--trainer.max_steps", "3", "--ckpt_path", str(ckpt))
    cli = seen["cli"]
    ours = cli.config.fit.model.init_args.optimizer
    assert ours.class_path == "torch.optim.RMSprop" and ours.init_args.alpha == 0.9
    LightningCLI._parse_ckpt_path(cli)  # what Lightning would do without the override
    theirs = cli.config.fit.model.init_args.optimizer
    assert theirs.class_path == "torch.optim.Adam"  # the model's default: the run's RMSprop silently replaced


def test_a_resume_keeps_the_runs_optimizer(tmp_path):
    _fit(tmp_path, "--trainer.max_steps", "2")
    cli = _fit(tmp_path, "--trainer.max_steps", "3", "--ckpt_path", "last", "--resume_allow", "max_steps")
    (optimizer,) = cli.trainer.optimizers
    assert type(optimizer) is torch.optim.RMSprop and optimizer.param_groups[0]["alpha"] == 0.9
    assert cli.trainer.global_step == 3


def test_kruzoo_spectrum_command_writes_the_png(tmp_path, capsys):
    assert main(["spectrum", "pretrained:kru_adding_t100", "--out", str(tmp_path / "s.png")]) is None
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {tmp_path / 's.png'}" in capsys.readouterr().out
