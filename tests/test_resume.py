"""A run killed with SIGKILL mid-epoch and resumed with ``--ckpt_path last`` ends bit-identical
to an uninterrupted run (weights, optimizer state, data order)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# 200 samples / batch 4 = 50 steps per epoch, two epochs; last.ckpt every 5 steps.
SMALL = ["--data.seq_len", "8", "--data.train_size", "200", "--data.val_size", "8", "--data.batch_size", "4",
         "--trainer.max_epochs", "2", "--trainer.val_check_interval", "1.0", "--trainer.log_every_n_steps", "5",
         "--resume_checkpoint.every_n_train_steps", "5", "--trainer.enable_progress_bar", "false"]
MODELS = {
    "kru": ["--config", str(REPO / "configs/adding/kru.yaml"), "--model.init_args.hidden_size", "16"],
    "furnn": ["--config", str(REPO / "configs/adding/furnn.yaml"), "--model.init_args.hidden_size", "8"],
}


def kruzoo(root, *args, check=True):
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests"))
    return subprocess.run([sys.executable, "-m", "kruzoo.cli.main", "fit", "--trainer.default_root_dir", str(root),
                           *args], env=env, capture_output=True, text=True, check=check)


def last_checkpoint(root):
    newest = max(Path(root).glob("runs/*/version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return torch.load(newest, weights_only=True)


# "last" finds the run; an explicit path must resume just the same (same optimizer and all).
@pytest.mark.parametrize("model,resume", [("kru", "last"), ("furnn", "path")])
def test_sigkill_mid_epoch_then_resume_is_bit_identical(model, resume, tmp_path):
    args = MODELS[model] + SMALL
    kruzoo(tmp_path / "straight", *args)

    killer = tmp_path / "kill.yaml"
    killer.write_text("trainer:\n  callbacks:\n    - class_path: kill_callback.KillAtStep\n"
                      "      init_args:\n        step: 73\n")
    killed = kruzoo(tmp_path / "killed", *args, "--config", str(killer), check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert last_checkpoint(tmp_path / "killed")["global_step"] == 70  # mid-epoch 1, 3 steps lost

    if resume == "last":
        resumed = kruzoo(tmp_path / "killed", *args, "--ckpt_path", "last")
        assert "resuming from" in resumed.stdout
    else:
        (path,) = (tmp_path / "killed").glob("runs/*/version_0/checkpoints/last.ckpt")
        kruzoo(tmp_path / "killed", *args, "--ckpt_path", str(path))

    expected, got = last_checkpoint(tmp_path / "straight"), last_checkpoint(tmp_path / "killed")
    assert got["global_step"] == expected["global_step"] == 100
    assert expected["state_dict"].keys() == got["state_dict"].keys()
    for name, value in expected["state_dict"].items():
        assert torch.equal(value, got["state_dict"][name]), name
    for a, b in zip(expected["optimizer_states"], got["optimizer_states"]):
        for key, state in a["state"].items():
            for k, v in state.items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][key][k])), (key, k)
