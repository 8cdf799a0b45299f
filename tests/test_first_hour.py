"""A researcher's first hour (issue 15): predictions kept, a checkpoint alone is enough, fine-tuning,
short names, ``kruzoo list``, packaged configs, the extension contract, quiet output."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kruzoo import pretrained
from kruzoo.cli import main
from kruzoo.cli.checkpoints import CheckpointArgumentError
from kruzoo.cli.predict import PredictInputError
from kruzoo.datamodules import AddingDataModule, CopyMemoryDataModule

REPO = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def _reference_outputs(name: str, inputs: torch.Tensor) -> torch.Tensor:
    model = pretrained.load(name)
    with torch.no_grad():
        return model(inputs)[0]


# -- 1. predict keeps its predictions ------------------------------------------------------------
def test_predict_writes_outputs_with_indices_that_match_the_model(tmp_path, capsys):
    # A copy model trained at T=1000 evaluated at T=1000 on 5 test sequences: the file holds
    # every step's logits, the class predictions recall the 10 symbols, and the indices say which.
    cli = main(["predict", "--ckpt_path", "pretrained:kru_copy_t1000", "--data.test_size", "5",
                "--data.batch_size", "2", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    (path,) = tmp_path.glob("runs/CopyMemoryDataModule-KRU/version_*/predictions/predictions_rank0.pt")
    assert str(path.relative_to(tmp_path)) in last or str(path) in last
    record = torch.load(path, weights_only=True)
    assert record["indices"].tolist() == [0, 1, 2, 3, 4]
    assert record["outputs"].shape == (5, 1020, 9) and record["mask"].shape == (5, 1020)
    dm = CopyMemoryDataModule(seq_len=1000, test_size=5)
    dm.setup("test")
    items = [dm.datasets["test"][i] for i in record["indices"].tolist()]
    inputs = torch.stack([item["inputs"] for item in items])
    torch.testing.assert_close(record["outputs"], _reference_outputs("kru_copy_t1000", inputs), rtol=1e-5, atol=1e-5)
    targets = torch.stack([item["targets"] for item in items])
    assert torch.equal(record["predictions"], targets)  # the pretrained model solves copy
    assert cli.trainer.state.finished


def test_predict_input_file_npy_and_pt(tmp_path):
    dm = AddingDataModule(seq_len=100, test_size=3)
    dm.setup("test")
    inputs = torch.stack([dm.datasets["test"][i]["inputs"] for i in range(3)])
    expected = _reference_outputs("kru_adding_t100", inputs)
    np.save(tmp_path / "one.npy", inputs[1].numpy())  # one sequence, (T, d)
    torch.save({"inputs": inputs}, tmp_path / "three.pt")
    for file, rows in (("one.npy", [1]), ("three.pt", [0, 1, 2])):
        out = tmp_path / file.replace(".", "_")
        main(["predict", "--ckpt_path", "pretrained:kru_adding_t100", "--predict_input", str(tmp_path / file),
              "--predictions_dir", str(out), "--trainer.logger", "false", *QUIET])
        record = torch.load(out / "predictions_rank0.pt", weights_only=True)
        assert record["split"] == "predict_input" and record["indices"].tolist() == list(range(len(rows)))
        torch.testing.assert_close(record["outputs"], expected[rows], rtol=1e-5, atol=1e-6)
        assert "predictions" not in record and "mask" not in record  # MSE at the last step


def test_predict_input_of_the_wrong_size_names_the_shapes(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((7, 3), dtype=np.float32))
    with pytest.raises(PredictInputError, match=r"bad\.npy: inputs of shape \(7, 3\), but the model takes \(T, 2\)"):
        main(["predict", "--ckpt_path", "pretrained:kru_adding_t100", "--predict_input", str(tmp_path / "bad.npy"),
              "--trainer.logger", "false", *QUIET])
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(PredictInputError, match="not a plain numeric .npy"):
        main(["predict", "--ckpt_path", "pretrained:kru_adding_t100", "--predict_input", str(tmp_path / "obj.npy"),
              "--trainer.logger", "false", *QUIET])


def test_ddp_predict_writes_one_file_per_rank_covering_the_split(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "kruzoo.cli.main", "predict", "--ckpt_path", "pretrained:kru_adding_t100",
         "--data.test_size", "10", "--data.batch_size", "3", "--trainer.accelerator", "cpu", "--trainer.devices", "2",
         "--trainer.strategy", "ddp", "--predictions_dir", str(tmp_path / "p"), "--trainer.logger", "false", *QUIET],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    records = [torch.load(tmp_path / "p" / f"predictions_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world_size"] for r in records] == [2, 2] and [r["rank"] for r in records] == [0, 1]
    indices = torch.cat([r["indices"] for r in records])
    # DistributedSampler pads 10 to 2 × 5 by repeating the first; every index appears.
    assert set(indices.tolist()) == set(range(10)) and len(indices) == 10
    dm = AddingDataModule(seq_len=100, test_size=10)
    dm.setup("test")
    for r in records:
        inputs = torch.stack([dm.datasets["test"][i]["inputs"] for i in r["indices"].tolist()])
        torch.testing.assert_close(r["outputs"], _reference_outputs("kru_adding_t100", inputs), rtol=1e-5, atol=1e-6)
    assert "predictions_rank*.pt" in run.stdout.strip().splitlines()[-1]


# -- 2. a checkpoint alone is enough; fine-tuning ------------------------------------------------
def test_test_a_pretrained_name_without_a_config(tmp_path, capsys):
    cli = main(["test", "--ckpt_path", "pretrained:kru_adding_t100", "--data.test_size", "40",
                "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    dm = AddingDataModule(seq_len=100, test_size=40)
    dm.setup("test")
    items = [dm.datasets["test"][i] for i in range(40)]
    outputs = _reference_outputs("kru_adding_t100", torch.stack([i["inputs"] for i in items]))
    reference = float(((outputs - torch.stack([i["targets"] for i in items])) ** 2).mean())
    assert float(cli.trainer.callback_metrics["test/loss"]) == pytest.approx(reference, rel=1e-5)
    assert re.search(r"kruzoo: test MSE [0-9.e-]+; baseline 0.1667", capsys.readouterr().out)


def _short_fit(tmp_path, *extra):
    return main(["fit", "--model", "kru", "--model.hidden_size", "16", "--data", "adding", "--data.seq_len", "10",
                 "--data.train_size", "40", "--data.val_size", "8", "--data.test_size", "16", "--data.batch_size", "8",
                 "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path), *QUIET, *extra])


def test_test_a_checkpoint_file_without_a_config(tmp_path):
    fitted = _short_fit(tmp_path)
    (last,) = tmp_path.glob("runs/AddingDataModule-KRU/version_0/checkpoints/last.ckpt")
    assert torch.load(last, weights_only=True)["kruzoo_data"]["class_path"].endswith("AddingDataModule")
    moved = tmp_path / "elsewhere.ckpt"  # away from its run folder: the checkpoint itself knows the data
    moved.write_bytes(last.read_bytes())
    cli = main(["test", "--ckpt_path", str(moved), "--trainer.logger", "false", *QUIET])
    assert type(cli.model).__name__ == "KRU" and cli.model.hparams.hidden_size == 16
    assert cli.datamodule.seq_len == 10 and cli.datamodule.sizes["test"] == 16
    x = torch.rand(2, 10, 2)
    torch.testing.assert_close(cli.model.eval()(x)[0], fitted.model.eval()(x)[0])


def test_fit_ckpt_path_pretrained_points_at_init_from():
    with pytest.raises(CheckpointArgumentError, match=r"--init_from pretrained:kru_adding_t100"):
        main(["fit", "--config", "adding/kru", "--ckpt_path", "pretrained:kru_adding_t100"])
    with pytest.raises(CheckpointArgumentError, match=r"give one; --init_from starts a new run"):
        main(["fit", "--init_from", "pretrained:kru_adding_t100", "--ckpt_path", "last"])


def test_fit_init_from_pretrained_starts_from_its_weights_with_a_fresh_optimizer(tmp_path):
    cli = main(["fit", "--init_from", "pretrained:kru_adding_t100", "--model.optimizer.lr", "1e-12",
                "--trainer.max_steps", "2", "--data.train_size", "40", "--data.val_size", "20",
                "--trainer.val_check_interval", "2", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    assert cli.trainer.global_step == 2  # not the pretrained run's 96,079
    saved = torch.load(pretrained.path("kru_adding_t100"), weights_only=True)["state_dict"]
    for key, value in cli.model.state_dict().items():
        # Two Adam steps of lr 1e-12 move a weight by at most ~2e-12: still the pretrained weights.
        torch.testing.assert_close(value, saved[key], rtol=0, atol=1e-9)
    assert float(cli.trainer.callback_metrics["val/loss"]) < 0.01  # it is the trained model


@pytest.mark.parametrize("ckpt", [None, "pretrained:kru_adding_t100"])
def test_a_fine_tuning_config_evaluates_as_written(ckpt, tmp_path):
    # configs/adding/kru_t400_curriculum.yaml holds `init_from:`; test takes it (its weights without
    # --ckpt_path, the checkpoint's with one) instead of refusing the key.
    args = ["test", "--config", str(REPO / "configs/adding/kru_t400_curriculum.yaml"), "--data.seq_len", "40",
            "--data.test_size", "40", "--trainer.default_root_dir", str(tmp_path), *QUIET]
    cli = main(args + (["--ckpt_path", ckpt] if ckpt else []))
    name = (ckpt or "pretrained:kru_adding_t200").removeprefix("pretrained:")
    saved = torch.load(pretrained.path(name), weights_only=True)["state_dict"]
    for key, value in cli.model.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0)
    assert float(cli.trainer.callback_metrics["test/loss"]) < 0.05  # a trained model, not the baseline 1/6


def test_init_from_a_checkpoint_of_another_shape_is_refused(tmp_path):
    with pytest.raises(CheckpointArgumentError, match=r"does not fit this KRU .*hidden_size"):
        _short_fit(tmp_path, "--init_from", "pretrained:kru_adding_t100", "--trainer.fast_dev_run", "1")


# -- 3. names, help text, kruzoo list ------------------------------------------------------------
def test_short_model_and_data_names_resolve():
    from kruzoo.cli.names import resolve_arguments, resolve_data, resolve_model
    from kruzoo.models.registry import get_model_class, list_models

    for name in list_models():
        cls = get_model_class(name)
        for spelling in (name, cls.__name__, cls.__name__.lower(), name.upper()):
            assert resolve_model(spelling) == f"kruzoo.models.{cls.__name__}", spelling
    import kruzoo.datamodules as dms

    for short, cls_name in {"adding": "AddingDataModule", "copy": "CopyMemoryDataModule", "ptb": "PTBCharDataModule",
                            "mnist": "PixelMNISTDataModule", "music": "PolyphonicMusicDataModule",
                            "timit": "TIMITDataModule", "AddingDataModule": "AddingDataModule",
                            "copymemory": "CopyMemoryDataModule"}.items():
        assert resolve_data(short) == f"kruzoo.datamodules.{cls_name}" and hasattr(dms, cls_name)
    assert resolve_data("my_module.MyDataModule") == "my_module.MyDataModule"  # dotted paths untouched
    assert resolve_arguments(["fit", "--model=KRU", "--data", "adding", "--model.hidden_size", "kru"]) == [
        "fit", "--model=kruzoo.models.KRU", "--data", "kruzoo.datamodules.AddingDataModule", "--model.hidden_size", "kru"]


@pytest.mark.parametrize("model", ["kru", "KRU", "lstm"])
def test_short_names_train_through_the_cli(model, tmp_path):
    cli = main(["fit", "--model", model, "--model.hidden_size", "8", "--data", "adding", "--data.seq_len", "6",
                "--data.batch_size", "4", "--trainer.fast_dev_run", "1", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    assert type(cli.model).__name__ == model.upper() and type(cli.datamodule).__name__ == "AddingDataModule"


def test_model_help_shows_the_docstring_of_each_argument():
    run = subprocess.run([sys.executable, "-m", "kruzoo.cli.main", "fit", "--model.help", "kru"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    text = " ".join(run.stdout.split())
    assert "--model.penalty_weight PENALTY_WEIGHT Weight of the soft unitary penalty" in text
    assert "--model.freeze_recurrence {true,false} Keep W at its unitary initialisation" in text


def test_kruzoo_list_names_models_datamodules_configs_and_pretrained(capsys):
    from kruzoo.models.registry import list_models

    assert main(["list"]) is None
    out = capsys.readouterr().out
    for name in list_models():
        assert re.search(rf"^  {name} +kruzoo\.models\.", out, re.M), name
    for cls in ("AddingDataModule", "CopyMemoryDataModule", "PixelMNISTDataModule", "PTBCharDataModule",
                "PolyphonicMusicDataModule", "TIMITDataModule"):
        assert f"kruzoo.datamodules.{cls}" in out
    tasks = sorted(p.name for p in (REPO / "configs").iterdir() if p.is_dir() and list(p.glob("*.yaml")))
    for task in tasks:
        models = sorted(p.stem for p in (REPO / "configs" / task).glob("*.yaml"))
        assert f"  {task}/{{{','.join(models)}}}" in out
    for name in pretrained.list():
        assert re.search(rf"^  {name} ", out, re.M), name


# -- 4. configs ship in the package and resolve by name ------------------------------------------
def test_wheel_ships_every_config(tmp_path):
    import zipfile

    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(REPO),
                          "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = tmp_path.glob("kruzoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = sorted(str(p.relative_to(REPO)) for p in REPO.glob("configs/*/*.yaml"))
    assert configs and all(f"kruzoo/{c}" in names for c in configs), sorted(set(f"kruzoo/{c}" for c in configs) - names)


def test_config_by_name_from_another_folder(tmp_path, monkeypatch):
    from kruzoo.cli.names import resolve_config

    monkeypatch.chdir(tmp_path)
    for spelling in ("copy/kru", "copy/kru.yaml", "configs/copy/kru.yaml"):
        assert Path(resolve_config(spelling)).read_text() == (REPO / "configs/copy/kru.yaml").read_text()
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "kru.yaml").write_text("seed_everything: 7\n")
    assert resolve_config("copy/kru.yaml") == "copy/kru.yaml"  # a file in the working folder wins
    with pytest.raises(FileNotFoundError, match=r"--config copy/krux: no such file .* packaged configs are"):
        resolve_config("copy/krux")
    cli = main(["fit", "--config", "adding/kru", "--model.hidden_size", "16", "--data.seq_len", "6",
                "--data.batch_size", "4", "--trainer.fast_dev_run", "1", *QUIET])
    assert type(cli.model).__name__ == "KRU" and type(cli.datamodule).__name__ == "AddingDataModule"


# -- 5. your own datamodule: the example trains from its folder; broken rules are named -----------
def test_example_datamodule_trains_from_its_folder(tmp_path):
    kruzoo_script = Path(sys.executable).parent / "kruzoo"
    run = subprocess.run(
        [str(kruzoo_script), "fit", "--data", "my_datamodule.MyDataModule", "--data.train_size", "60",
         "--data.val_size", "20", "--model", "lstm", "--model.hidden_size", "8", "--trainer.max_steps", "4",
         "--trainer.default_root_dir", str(tmp_path), *QUIET],
        cwd=REPO / "examples", capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert list(tmp_path.glob("runs/MyDataModule-LSTM/version_0/checkpoints/last.ckpt"))
    assert re.search(r"kruzoo: val CE [0-9.e-]+ nats, accuracy [0-9.]+%; baseline 0.6931 nats \(guessing\)", run.stdout)


def _bad_datamodule(item_fn, splits=("train", "val", "test"), task=None):
    from kruzoo.datamodules import SequenceDataModule
    from kruzoo.task import TaskSpec

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return item_fn(i)

    class BadDataModule(SequenceDataModule):
        @property
        def task(self):
            return task or TaskSpec(input_size=2, output_size=3, loss="cross_entropy", target="last")

        def setup(self, stage=None):
            for split in splits:
                self.datasets[split] = Items()

    return BadDataModule(batch_size=2)


def _good(i):
    return {"inputs": torch.zeros(5, 2), "targets": torch.tensor(i % 3)}


@pytest.mark.parametrize("item_fn, splits, message", [
    (lambda i: (torch.zeros(5, 2), torch.tensor(0)), None,
     r"BadDataModule split 'train' item 0 is a tuple, but items must be dicts"),
    (lambda i: {"inputs": torch.zeros(5, 4), "targets": torch.tensor(0)}, None,
     r"item 0: 'inputs' has 4 features per step \(shape \(5, 4\)\), but task.input_size is 2"),
    (lambda i: {"inputs": torch.zeros(5, 2), "targets": torch.tensor(3 if i == 3 else 0)}, None,
     r"item 3: label 3 is out of range: task.output_size is 3, so labels must lie in 0..2"),
    (lambda i: {"inputs": torch.zeros(5, 2), "targets": torch.tensor(0.0)}, None,
     r"cross-entropy 'targets' must be integer class indices"),
    (lambda i: {"inputs": torch.zeros(5, 2)}, None, r"lacks \['targets'\]"),
    (_good, ("train", "test"), r"BadDataModule.setup\(\) did not fill self.datasets\['val'\] \(it has \['test', 'train'\]\)"),
])
def test_contract_errors_name_the_rule(item_fn, splits, message):
    from kruzoo.datamodules.contract import DataContractError

    dm = _bad_datamodule(item_fn, splits or ("train", "val", "test"))
    dm.setup("fit")
    with pytest.raises(DataContractError, match=message):
        dm.train_dataloader()
        dm.val_dataloader()


def test_contract_accepts_a_good_module_and_every_step_targets():
    from kruzoo.task import TaskSpec

    dm = _bad_datamodule(_good)
    assert len(dm.train_dataloader()) == 2 and len(dm.val_dataloader()) == 2
    every = TaskSpec(input_size=2, output_size=4, loss="mse", target="every")
    ok = _bad_datamodule(lambda i: {"inputs": torch.zeros(5, 2), "targets": torch.zeros(5, 4),
                                    "mask": torch.ones(5, dtype=torch.bool)}, task=every)
    ok.train_dataloader()
    from kruzoo.datamodules.contract import DataContractError

    wrong = _bad_datamodule(lambda i: {"inputs": torch.zeros(5, 2), "targets": torch.zeros(5, 3)}, task=every)
    with pytest.raises(DataContractError, match=r"'targets' must be \(T, output_size\) = \(5, 4\)"):
        wrong.train_dataloader()


# -- 6. noise -------------------------------------------------------------------------------------
def test_a_warning_from_kruzoo_fails_the_suite():
    # pyproject's filterwarnings: error::Warning:kruzoo (a third-party module's warning only shows).
    import warnings

    with pytest.raises(UserWarning, match="from kruzoo"):
        warnings.warn_explicit("from kruzoo", UserWarning, "kruzoo/x.py", 1, module="kruzoo.sequence_model")
    with pytest.warns(UserWarning, match="from elsewhere"):
        warnings.warn_explicit("from elsewhere", UserWarning, "other.py", 1, module="other")


def test_plain_fit_prints_no_third_party_noise(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "kruzoo.cli.main", "fit", "--model", "kru", "--model.hidden_size", "8", "--data", "adding",
         "--data.seq_len", "6", "--data.val_size", "8", "--data.batch_size", "4", "--trainer.max_steps", "3",
         "--trainer.val_check_interval", "3", "--trainer.default_root_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr[-3000:]
    text = run.stdout + run.stderr
    for noise in ("litlogger", "set_vital", "LeafSpec", "v_num", "args parameter is intended"):
        assert noise not in text, noise
    assert "kruzoo: val MSE" in text and "baseline 0.1667" in text


def test_progress_bar_total_is_what_max_steps_leaves():
    from lightning.pytorch import Callback, Trainer

    from kruzoo.cli.extras import HonestTQDMProgressBar
    from kruzoo.models import KRU

    seen = {}

    class Probe(Callback):
        def on_train_batch_end(self, trainer, *args):
            bar = trainer.progress_bar_callback
            seen["total"] = bar.train_progress_bar.total
            seen["metrics"] = bar.get_metrics(trainer, trainer.lightning_module)

    dm = AddingDataModule(seq_len=5, train_size=100, val_size=4, batch_size=5)  # 20 batches per epoch
    model = KRU(task=dm.task.as_dict(), hidden_size=4)
    trainer = Trainer(max_epochs=10, max_steps=7, callbacks=[HonestTQDMProgressBar(), Probe()], limit_val_batches=0,
                      logger=False, enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm)
    assert seen["total"] == 7 and trainer.global_step == 7  # Lightning's own bar says 20 here
    assert "v_num" not in seen["metrics"]


# -- 8. kruzoo report on a real short run ----------------------------------------------------------
def test_report_of_a_short_run(tmp_path, capsys):
    fitted = _short_fit(tmp_path, "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "1")
    (run_dir,) = tmp_path.glob("runs/AddingDataModule-KRU/version_0")
    assert main(["report", str(run_dir)]) is None
    assert "kruzoo: report in" in capsys.readouterr().out
    for png in ("curves.png", "spectrum.png"):
        assert (run_dir / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (run_dir / "report" / "report.md").read_text()
    counts = fitted.model.parameter_counts()
    assert f"parameters: {counts['total']:,} in all, {counts['recurrent']:,} recurrent" in text
    last_val = float(fitted.trainer.callback_metrics["val/loss"])
    assert re.search(rf"validation MSE: last {last_val:.4g} \(step 9\)", text), text
    assert "baseline: 0.1667 (always answering 1)" in text
    from kruzoo.cli.report import ReportError

    with pytest.raises(ReportError, match="has no TensorBoard events"):
        main(["report", str(tmp_path)])


def test_prediction_writer_on_a_stream_task_records_window_and_stream(tmp_path):
    from lightning.pytorch import Trainer

    from kruzoo.cli.predict import PredictionWriter
    from kruzoo.models import LSTM
    from kruzoo.task import TaskSpec

    task = TaskSpec(input_size=3, output_size=3, loss="cross_entropy", target="every", stateful=True)
    windows = [{"inputs": torch.rand(4, 5, 3), "targets": torch.zeros(4, 5, dtype=torch.long)} for _ in range(3)]
    model = LSTM(task=task.as_dict(), hidden_size=4)
    writer = PredictionWriter(tmp_path)
    Trainer(callbacks=[writer], logger=False, enable_progress_bar=False, enable_model_summary=False).predict(
        model, dataloaders=torch.utils.data.DataLoader(windows, batch_size=None), return_predictions=False)
    record = torch.load(tmp_path / "predictions_rank0.pt", weights_only=True)
    assert record["indices"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert record["streams"].tolist() == [0, 1, 2, 3] * 3
    with torch.no_grad():  # the hidden state is carried from one window to the next, as in test
        state, expected = None, []
        for w in windows:
            out, state = model(w["inputs"], state)
            expected.append(out)
    torch.testing.assert_close(record["outputs"], torch.cat(expected))
    with torch.no_grad():
        fresh = model(windows[1]["inputs"])[0]
    assert not torch.allclose(record["outputs"][4:8], fresh)  # window 1 did not start from zero
