"""Run integrity (cli/integrity.py): a resume continues the right run or refuses, one writer per run
folder, validate/test never overwrite the fit's config.yaml, SIGINT/SIGTERM save last.ckpt at the
step they stop, epoch metrics and TensorBoard stay whole across a resume, fast_dev_run writes no
checkpoint. In-process (``kruzoo.cli.main.main``) except the one real-signal subprocess."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from kruzoo.cli import integrity
from kruzoo.cli.errors import run
from kruzoo.cli.main import main

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# 40 samples / batch 4 = 10 steps an epoch, two epochs; last.ckpt every 5 steps.
SMALL = ["--config", str(REPO / "configs/adding/rnn.yaml"), "--model.init_args.hidden_size", "8",
         "--data.seq_len", "8", "--data.train_size", "40", "--data.val_size", "8", "--data.batch_size", "4",
         "--trainer.max_epochs", "2", "--trainer.val_check_interval", "1.0", "--trainer.log_every_n_steps", "1",
         "--resume_checkpoint.every_n_train_steps", "5", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]


def fit(root, *extra):
    return main(["fit", "--trainer.default_root_dir", str(root), *SMALL, *extra])


def run_dir(root) -> Path:
    (folder,) = Path(root).glob("runs/AddingDataModule-RNN/version_0")
    return folder


def last(root) -> dict:
    return torch.load(run_dir(root) / "checkpoints/last.ckpt", weights_only=True)


def signal_config(tmp_path, step, signum) -> str:
    path = tmp_path / f"signal_{step}.yaml"
    path.write_text("trainer:\n  callbacks:\n    - class_path: kill_callback.SignalAtStep\n"
                    f"      init_args:\n        step: {step}\n        signum: {int(signum)}\n")
    return str(path)


def scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(folder), purge_orphaned_data=True)
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def test_resume_refuses_a_different_config_and_lists_the_differences(tmp_path):
    fit(tmp_path, "--trainer.max_steps", "7")
    with pytest.raises(integrity.ResumeError) as info:
        fit(tmp_path, "--trainer.max_steps", "7", "--ckpt_path", "last", "--data.seq_len", "9",
            "--model.init_args.optimizer.init_args.lr", "0.1")
    message = str(info.value)
    assert "data.init_args.seq_len: 8 in the run, 9 now" in message
    assert "model.init_args.optimizer.init_args.lr: 0.001 in the run, 0.1 now (allow with --resume_allow lr)" in message
    assert "in 2 setting(s)" in message
    # a longer budget is a change too, allowed only when stated
    with pytest.raises(integrity.ResumeError, match=r"trainer.max_steps: 7 in the run, 12 now \(allow with"):
        fit(tmp_path, "--trainer.max_steps", "12", "--ckpt_path", "last")
    assert last(tmp_path)["global_step"] == 7  # nothing was written by the refused resumes


def test_resume_with_an_allowed_lr_sets_it_in_the_restored_optimizer(tmp_path):
    fit(tmp_path, "--trainer.max_steps", "5")
    before = last(tmp_path)
    assert before["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.001)
    fit(tmp_path, "--trainer.max_steps", "6", "--ckpt_path", "last", "--resume_allow", "lr,max_steps",
        "--model.init_args.optimizer.init_args.lr", "0.25")
    after = last(tmp_path)
    assert after["global_step"] == 6
    assert [g["lr"] for g in after["optimizer_states"][0]["param_groups"]] == [0.25]
    # the one step taken used it: RMSprop's update of a weight is lr * g / (sqrt(v) + eps)
    key = "core.rnn.weight_hh_l0"
    state = after["optimizer_states"][0]["state"]
    step_size = (after["state_dict"][key] - before["state_dict"][key]).abs().max()
    assert 0.01 < float(step_size) < 10 * 0.25, float(step_size)
    folder = run_dir(tmp_path)
    assert yaml.safe_load((folder / "config.yaml").read_text())["model"]["init_args"]["optimizer"]["init_args"]["lr"] == 0.25
    assert yaml.safe_load((folder / "config.before_resume_5.yaml").read_text())["trainer"]["max_steps"] == 5
    assert state  # the optimizer state was restored, not rebuilt


def test_resume_allow_names_only_what_may_change(tmp_path):
    fit(tmp_path, "--trainer.max_steps", "5")
    with pytest.raises(integrity.ResumeError, match="--resume_allow hidden_size: hidden_size cannot be changed"):
        fit(tmp_path, "--trainer.max_steps", "5", "--ckpt_path", "last", "--resume_allow", "hidden_size")


def test_ckpt_path_last_without_a_run_stops(tmp_path):
    with pytest.raises(integrity.ResumeError, match="--ckpt_path last: there is no run to resume"):
        fit(tmp_path, "--ckpt_path", "last")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.ckpt"))


def test_a_second_fit_of_a_locked_run_is_refused_and_a_dead_holder_does_not_block(tmp_path, monkeypatch):
    fit(tmp_path, "--trainer.max_steps", "5")
    lock = integrity.RunLock(run_dir(tmp_path))
    lock.acquire()  # as a running fit holds it
    try:
        with pytest.raises(integrity.RunLockedError, match=rf"is in use by another kruzoo fit \(pid {os.getpid()}\)"):
            fit(tmp_path, "--trainer.max_steps", "5", "--ckpt_path", "last")
    finally:
        lock.release()
    fit(tmp_path, "--trainer.max_steps", "6", "--ckpt_path", "last", "--resume_allow", "max_steps")
    assert last(tmp_path)["global_step"] == 6

    # without flock (some network filesystems): an O_EXCL pid file, taken over when its pid is dead
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "no locks")

    monkeypatch.setattr(integrity.fcntl, "flock", no_flock)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    pid_file = run_dir(tmp_path) / ".kruzoo.pid"
    pid_file.write_text(f"{dead}\n")
    stale = integrity.RunLock(run_dir(tmp_path))
    stale.acquire()
    assert pid_file.read_text().strip() == str(os.getpid())
    with pytest.raises(integrity.RunLockedError):
        integrity.RunLock(run_dir(tmp_path)).acquire()
    stale.release()
    assert not pid_file.exists()


def test_validate_and_test_write_their_own_config_record(tmp_path):
    fit(tmp_path, "--trainer.max_steps", "5")
    folder = run_dir(tmp_path)
    recorded = (folder / "config.yaml").read_bytes()
    ckpt = folder / "checkpoints/last.ckpt"
    for subcommand in ("validate", "test"):
        main([subcommand, "--trainer.default_root_dir", str(tmp_path), *SMALL, "--ckpt_path", "last",
              "--data.batch_size", "2"])
        assert (folder / f"config_{subcommand}.yaml").is_file()
        main([subcommand, "--trainer.default_root_dir", str(tmp_path), *SMALL, "--ckpt_path", str(ckpt)])
    assert (folder / "config.yaml").read_bytes() == recorded
    assert last(tmp_path)["global_step"] == 5


def test_sigint_saves_the_step_and_the_resume_matches_an_uninterrupted_run(tmp_path):
    fit(tmp_path / "straight")
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    with pytest.raises(integrity.RunInterrupted, match="stopped by SIGINT after global step 14"):
        fit(tmp_path / "cut", "--config", signal_config(tmp_path, 13, signal.SIGINT))
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    assert last(tmp_path / "cut")["global_step"] == 14  # the step in progress was finished and saved
    fit(tmp_path / "cut", "--ckpt_path", "last")
    a, b = last(tmp_path / "straight"), last(tmp_path / "cut")
    assert a["global_step"] == b["global_step"] == 20
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    # the epoch-level train/loss of epoch 1 averages all its 10 steps, as without the interruption
    straight = dict(scalars(run_dir(tmp_path / "straight"), "train/loss"))
    resumed = dict(scalars(run_dir(tmp_path / "cut"), "train/loss"))
    assert straight.keys() == resumed.keys() and len(straight) == 2
    for step in straight:
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6), step
    # TensorBoard holds each step once: the resume purged what was logged after the checkpoint
    steps = [s for s, _ in scalars(run_dir(tmp_path / "cut"), "train/loss_step")]
    assert steps == sorted(set(steps)) and len(steps) == 20


def test_step_scalars_reach_the_logger_every_n_steps_and_epoch_metrics_average_every_batch(tmp_path):
    # SequenceModel logs step scalars only on the steps Lightning writes, and its epoch metrics once
    # per epoch (each self.log costs ~1 ms): nothing the logger writes may change by it.
    fit(tmp_path / "every", "--trainer.max_epochs", "1")
    fit(tmp_path / "third", "--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "3")
    every = dict(scalars(run_dir(tmp_path / "every"), "train/loss_step"))
    assert sorted(every) == list(range(10))
    # the epoch's train/loss is the mean over all 10 equal batches, not the first one logged
    ((_, epoch_loss),) = scalars(run_dir(tmp_path / "every"), "train/loss")
    assert epoch_loss == pytest.approx(sum(every.values()) / 10, rel=1e-5)
    assert epoch_loss != pytest.approx(every[0], rel=1e-3)
    for tag in ("train/loss_step", "train/grad_norm", "train/skipped_updates"):
        assert [s for s, _ in scalars(run_dir(tmp_path / "third"), tag)] == [2, 5, 8], tag
    for step, value in scalars(run_dir(tmp_path / "third"), "train/loss_step"):  # same seed, same run
        assert value == pytest.approx(every[step], rel=1e-6), step
    ((_, third_epoch_loss),) = scalars(run_dir(tmp_path / "third"), "train/loss")
    assert third_epoch_loss == pytest.approx(epoch_loss, rel=1e-6)


def test_sigterm_to_a_subprocess_saves_last_ckpt_and_exits_143(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    result = subprocess.run(
        [sys.executable, "-m", "kruzoo.cli.main", "fit", "--trainer.default_root_dir", str(tmp_path), *SMALL,
         "--config", signal_config(tmp_path, 3, signal.SIGTERM)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-3000:]
    assert "kruzoo: stopped by SIGTERM after global step 4; saved " in result.stderr
    assert "Traceback" not in result.stderr
    assert last(tmp_path)["global_step"] == 4


def test_fast_dev_run_writes_no_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *SMALL, "--trainer.fast_dev_run", "true"])
    assert not list(tmp_path.rglob("*.ckpt")), list(tmp_path.rglob("*"))


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-true", "16-mixed", "64-true"])
def test_precision_other_than_float32_is_refused_up_front(tmp_path, precision, capsys):
    code = run(["fit", "--trainer.default_root_dir", str(tmp_path), *SMALL, "--trainer.precision", precision])
    err = capsys.readouterr().err
    assert code == 1
    assert f"kruzoo: error: --trainer.precision {precision} is not supported" in err
    assert not (tmp_path / "runs").exists()


def test_what_a_resume_may_change():
    recorded = {"model": {"class_path": "kruzoo.models.KRU", "init_args": {
                    "hidden_size": 8, "lr_scheduler": None,
                    "optimizer": {"class_path": "torch.optim.Adam", "init_args": {"lr": 0.001, "weight_decay": 0.0}}}},
                "trainer": {"max_time": "00:01:00:00", "log_every_n_steps": 50},
                "data": {"class_path": "kruzoo.datamodules.AddingDataModule",
                         "init_args": {"seq_len": 5, "num_workers": 0}}}
    current = yaml.safe_load(yaml.safe_dump(recorded))
    current["model"]["init_args"]["lr_scheduler"] = {"class_path": "torch.optim.lr_scheduler.ExponentialLR",
                                                     "init_args": {"gamma": 0.3}}
    current["trainer"].update(max_time="00:02:00:00", log_every_n_steps=10)  # logging: free
    current["data"]["init_args"]["num_workers"] = 2  # free
    refused, allowed, new_lr = integrity.compare_configs(recorded, current, set())
    assert {line.split(":")[0] for line in refused} == {
        "model.init_args.lr_scheduler", "model.init_args.lr_scheduler.class_path",
        "model.init_args.lr_scheduler.init_args.gamma", "trainer.max_time"}
    assert all("allow with --resume_allow" in line for line in refused) and len(refused) >= 2
    refused, allowed, new_lr = integrity.compare_configs(recorded, current, {"lr_scheduler", "max_time"})
    assert refused == [] and new_lr is None and len(allowed) >= 2
    current["model"]["init_args"]["optimizer"]["init_args"]["weight_decay"] = 0.1  # shapes training: refused
    current["model"]["init_args"]["optimizer"]["init_args"]["lr"] = 0.01
    refused, allowed, new_lr = integrity.compare_configs(recorded, current, {"lr", "lr_scheduler", "max_time"})
    assert refused == ["model.init_args.optimizer.init_args.weight_decay: 0.0 in the run, 0.1 now"]
    assert new_lr == 0.01


def test_an_option_added_after_the_run_counts_only_when_set():
    # An LSTM run logged before `forget_bias` existed: resuming it with the option at its None
    # default changes nothing; setting it, or dropping an option the run had, is a difference.
    recorded = {"model": {"class_path": "kruzoo.models.LSTM", "init_args": {"hidden_size": 8}}}
    current = {"model": {"class_path": "kruzoo.models.LSTM", "init_args": {"hidden_size": 8, "forget_bias": None}}}
    assert integrity.compare_configs(recorded, current, set()) == ([], [], None)
    current["model"]["init_args"]["forget_bias"] = 1.0
    refused, _, _ = integrity.compare_configs(recorded, current, set())
    assert refused == ["model.init_args.forget_bias: '<absent>' in the run, 1.0 now"]
    refused, _, _ = integrity.compare_configs(current, recorded, set())
    assert refused == ["model.init_args.forget_bias: 1.0 in the run, '<absent>' now"]
