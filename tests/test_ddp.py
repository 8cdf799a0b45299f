"""``kruzoo fit`` with two CPU processes (DDP over gloo): disjoint shards of one deterministic
dataset, synchronised metrics, and a checkpoint that loads in a single process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kruzoo.cli import main
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import KRU

REPO = Path(__file__).resolve().parents[1]
DATA = ["--data.seq_len", "6", "--data.train_size", "32", "--data.val_size", "16", "--data.batch_size", "4"]


def test_ddp_two_cpu_processes(tmp_path):
    probe = tmp_path / "probe.yaml"
    probe.write_text(f"trainer:\n  callbacks:\n    - class_path: ddp_probe.RecordRankData\n"
                     f"      init_args:\n        out_dir: {tmp_path / 'ranks'}\n")
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests"))
    run = subprocess.run(
        [sys.executable, "-m", "kruzoo.cli.main", "fit", "--config", str(REPO / "configs/adding/kru.yaml"),
         "--config", str(probe), "--model.init_args.hidden_size", "8", *DATA, "--trainer.max_epochs", "2",
         "--trainer.val_check_interval", "1.0", "--trainer.accelerator", "cpu", "--trainer.devices", "2",
         "--trainer.strategy", "ddp", "--trainer.enable_progress_bar", "false",
         "--trainer.default_root_dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]

    # Each rank trained on 16 of the 32 samples in epoch 0; together, exactly the dataset.
    dm = AddingDataModule(seq_len=6, train_size=32, val_size=16)
    dm.setup("fit")
    everything = sorted(tuple(dm.datasets["train"][i]["inputs"][:, 0].tolist()) for i in range(32))
    seen = [sorted(tuple(s) for s in r["samples"]) for r in ranks]
    assert len(seen[0]) == len(seen[1]) == 16
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == everything

    # Metrics are synchronised: both ranks logged the same validation loss ...
    assert ranks[0]["metrics"]["val/loss"] == pytest.approx(ranks[1]["metrics"]["val/loss"], rel=1e-6)
    # ... and it is the loss of the whole validation set, as one process computes it from the checkpoint.
    (ckpt,) = tmp_path.glob("runs/*/version_0/checkpoints/last.ckpt")
    model = KRU.load_from_checkpoint(ckpt, weights_only=True)
    validate = main(["validate", "--config", str(REPO / "configs/adding/kru.yaml"), "--model.init_args.hidden_size",
                     "8", *DATA, "--ckpt_path", str(ckpt), "--trainer.enable_progress_bar", "false",
                     "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path / "single")])
    assert float(validate.trainer.callback_metrics["val/loss"]) == pytest.approx(ranks[0]["metrics"]["val/loss"], rel=1e-5)
    x = torch.rand(2, 6, 2)
    torch.testing.assert_close(model(x)[0], validate.model(x)[0])
