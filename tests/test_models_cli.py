"""Models through the shared LightningModule and the CLI: configs, checkpoints, state carrying."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer

import kruzoo
from kruzoo.cli import main
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import KRU, LSTM, RNN
from kruzoo.task import TaskSpec

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_CONFIGS = sorted(REPO.glob("configs/copy/*.yaml")) + sorted(REPO.glob("configs/adding/*.yaml"))


def fit_args(tmp_path, *extra):
    return ["fit", "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", *extra]


@pytest.mark.parametrize("config", SYNTHETIC_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_runs_through_the_cli(config, tmp_path):
    # Shortened sequences keep the reference ops fast; everything else is the config as written.
    cli = main(fit_args(tmp_path, "--config", str(config), "--trainer.fast_dev_run", "1",
                        "--data.seq_len", "12", "--data.batch_size", "4"))
    assert cli.trainer.state.finished
    text = config.read_text()
    assert f"kruzoo fit --config configs/{config.parent.name}/{config.name}" in text  # header names itself
    assert re.search(r"[Pp]aper.*parameters", text, re.S)  # the paper's count it corresponds to


def test_help_runs():
    out = subprocess.run([sys.executable, "-c", "from kruzoo.cli import main; main(['--help'])"],
                         capture_output=True, text=True, check=True).stdout
    assert "fit" in out and "test" in out


def test_fit_checkpoint_loads_with_weights_only_and_gives_identical_outputs(tmp_path):
    cli = main(fit_args(tmp_path, "--config", str(REPO / "configs/adding/kru.yaml"),
                        "--model.init_args.hidden_size", "16", "--data.seq_len", "10", "--data.train_size", "40",
                        "--data.val_size", "8", "--data.batch_size", "8", "--trainer.max_epochs", "1",
                        "--trainer.val_check_interval", "1.0"))
    (last,) = tmp_path.glob("runs/AddingDataModule-KRU/version_0/checkpoints/last.ckpt")
    assert last.is_file()
    raw = torch.load(last, weights_only=True)  # raises if anything but primitives/tensors was saved
    assert raw["hyper_parameters"]["hidden_size"] == 16
    loaded = KRU.load_from_checkpoint(last, weights_only=True).eval()
    model = cli.model.eval()
    x = torch.rand(3, 10, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)
    assert loaded.task == model.task
    assert any((last.parent.parent / name).is_file() for name in ("config.yaml",))  # resolved config saved


def test_create_model_and_unknown_name():
    task = TaskSpec(input_size=2, output_size=1, loss="mse", target="last")
    model = kruzoo.create_model("kru", task=task, hidden_size=8)
    assert isinstance(model, KRU) and model.hparams["task"] == task.as_dict()
    assert {"kru", "rnn", "lstm", "gru"} <= set(kruzoo.list_models())
    with pytest.raises(ValueError, match=r"unknown model 'krux'; available: .*kru"):
        kruzoo.create_model("krux", task=task)
    with pytest.raises(ValueError, match="needs a task"):
        kruzoo.create_model("kru", hidden_size=8)


def test_kru_model_counts_and_frozen_recurrence():
    task = TaskSpec(input_size=10, output_size=9, loss="cross_entropy", target="every")
    model = KRU(task=task.as_dict(), hidden_size=128, factor_size=2, freeze_recurrence=True, penalty_weight=1.0)
    counts = model.parameter_counts()
    assert counts["recurrent"] == 7 * 2 * 2 * 2  # seven complex 2×2 factors as real pairs
    # U (complex 128×10) + modReLU bias + factors + readout from [Re h; Im h]
    assert counts["total"] == 2 * 128 * 10 + 128 + 56 + (256 * 9 + 9)
    assert all(not p.requires_grad for p in model.core.recurrent_parameters())
    assert model.penalty() is None  # a frozen recurrence has nothing to regularise
    w = model.recurrent_matrix()
    torch.testing.assert_close(w.mH @ w, torch.eye(128, dtype=w.dtype), atol=1e-5, rtol=0)


def test_kru_penalty_is_weighted_unitary_penalty():
    task = TaskSpec(input_size=2, output_size=1, loss="mse", target="last")
    model = KRU(task=task.as_dict(), hidden_size=8, penalty_weight=0.5)
    with torch.no_grad():
        model.core.factors.weights[0].mul_(2.0)  # W_1ᴴW_1 = 4I: penalty 0.5 · ‖3I‖² = 0.5 · 18
    assert model.penalty().item() == pytest.approx(9.0, rel=1e-5)


def test_kru_recurrent_matrix_is_what_the_recurrence_does():
    task = TaskSpec(input_size=1, output_size=1, loss="mse", target="last")
    model = KRU(task=task.as_dict(), hidden_size=8, factor_shapes=[[2, 4], [4, 2]])
    core = model.core
    core.eps = 0.0  # exact identity for this check (eps = 0 is refused as a hyperparameter: NaN at z = 0)
    with torch.no_grad():
        core.input_proj.weight.zero_()
        basis = torch.eye(8, dtype=torch.complex64)
        # With zero input and bias, modReLU is the identity: one step maps e_j to W e_j.
        features, _ = core(torch.zeros(8, 1, 1), basis)
    h1 = torch.complex(features[:, 0, :8], features[:, 0, 8:])
    torch.testing.assert_close(h1.T, model.recurrent_matrix(), atol=1e-6, rtol=0)


def test_state_is_carried_across_consecutive_windows():
    task = TaskSpec(input_size=3, output_size=4, loss="cross_entropy", target="every", stateful=True)
    model = LSTM(task=task.as_dict(), hidden_size=6).double().eval()
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 10))
    with torch.no_grad():
        full, _ = model(x)
        model.on_validation_epoch_start()
        model._shared_step({"inputs": x[:, :5], "targets": y[:, :5]}, "val")
        second = model._shared_step({"inputs": x[:, 5:], "targets": y[:, 5:]}, "val")
        expected = torch.nn.functional.cross_entropy(full[:, 5:].reshape(-1, 4), y[:, 5:].reshape(-1))
        torch.testing.assert_close(second, expected)
        model.on_validation_epoch_start()  # a new epoch starts the stream afresh
        fresh = model._shared_step({"inputs": x[:, 5:], "targets": y[:, 5:]}, "val")
        assert not torch.allclose(fresh, expected)


def test_nan_loss_stops_with_the_step(tmp_path):
    dm = AddingDataModule(seq_len=5, train_size=8, val_size=4, test_size=4, batch_size=4)
    model = RNN(task=dm.task.as_dict(), hidden_size=4)
    with torch.no_grad():
        model.head.readout.bias.fill_(float("nan"))
    trainer = Trainer(fast_dev_run=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    with pytest.raises(FloatingPointError, match=r"became nan at global step 0 "):
        trainer.fit(model, dm)


def _checkpoint_of(model, path):
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_steps=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path, weights_only=False)
    return path


def test_checkpoint_of_another_model_is_refused_with_its_name(tmp_path):
    task = TaskSpec(input_size=2, output_size=1, loss="mse", target="last").as_dict()
    path = _checkpoint_of(KRU(task=task, hidden_size=8), tmp_path / "kru.ckpt")
    with pytest.raises(ValueError, match=r"written by kruzoo\.models\.kru\.KRU, but the model here is .*LSTM"):
        LSTM.load_from_checkpoint(path, weights_only=True)
    # Same class, other sizes: the mismatching tensors and the checkpoint's hyperparameters are named.
    other = _checkpoint_of(KRU(task=task, hidden_size=16), tmp_path / "kru16.ckpt")
    model = KRU(task=task, hidden_size=8)
    with pytest.raises(ValueError, match=r"does not fit this KRU \(core.bias: checkpoint \(16,\) vs model \(8,\); "
                                         r".*'hidden_size': 16"):
        model.on_load_checkpoint(torch.load(other, weights_only=True))


def test_non_finite_gradient_skips_the_update_and_keeps_weights_finite(tmp_path):
    dm = AddingDataModule(seq_len=5, train_size=8, val_size=4, test_size=4, batch_size=4)
    model = RNN(task=dm.task.as_dict(), hidden_size=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # The loss stays finite; only the gradient overflows (as BPTT through modReLU at z = 0 can).
    model.core.rnn.weight_hh_l0.register_hook(lambda g: g * float("inf"))
    trainer = Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      gradient_clip_val=1.0, limit_val_batches=0, default_root_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"non-finite gradient norm at global step 0: update skipped"):
        trainer.fit(model, dm)
    assert model.skipped_updates == 2
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # no update at all, not even a NaN one
    assert not trainer.optimizers[0].state  # the optimizer's statistics were not touched either
