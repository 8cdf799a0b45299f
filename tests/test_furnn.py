"""models/furnn.py through Lightning: W stays unitary and a resume is exact, W moves by the Cayley step
only and is never clipped, DDP ranks keep the same W."""

from __future__ import annotations

import subprocess
import sys
from functools import partial

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from helpers import ADDING, QUIET, quiet_trainer, unitarity_error
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import FURNN


pytestmark = QUIET


def furnn_run(tmp_path, max_steps: int, ckpt_path=None, callbacks=(), seed: int = 0) -> FURNN:
    L.seed_everything(seed, verbose=False)
    datamodule = AddingDataModule(seq_len=8, train_size=40 * 16, val_size=16, test_size=16, batch_size=16)
    model = FURNN(
        task=datamodule.task.as_dict(), hidden_size=8, manifold_lr=0.2, optimizer=partial(torch.optim.Adam, lr=1e-2)
    )
    trainer = quiet_trainer(
        max_steps=max_steps,
        gradient_clip_val=0.5,
        default_root_dir=tmp_path,
        callbacks=list(callbacks),
        enable_checkpointing=bool(callbacks),
    )
    trainer.fit(model, datamodule, ckpt_path=ckpt_path)
    assert trainer.global_step == max_steps
    return model


def test_furnn_training_keeps_w_unitary_and_resumes_exactly(tmp_path):
    L.seed_everything(0, verbose=False)  # the seed of the run below: its initial W
    initial = FURNN(task=ADDING, hidden_size=8).core.recurrent_matrix()
    # 300 steps (7.5 epochs of 40 batches) with a checkpoint at step 220, mid-epoch.
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=220, save_top_k=-1, filename="{step}")
    full = furnn_run(tmp_path / "full", 300, callbacks=[checkpoints])
    w = full.core.recurrent_matrix()
    assert (w - initial).abs().max() > 0.1  # the Cayley steps moved W a long way …
    assert unitarity_error(w) < 1e-5  # … along the unitary group
    ckpt = tmp_path / "ckpt" / "step=220.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["furnn_manifold_optimizer"]["param_groups"][0]["lr"] == 0.2
    resumed = furnn_run(tmp_path / "resumed", 300, ckpt_path=ckpt, seed=1)  # other init: overwritten
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0, msg=f"{name} differs after resuming")


def test_furnn_steps_w_only_by_cayley_and_never_clips_it(tmp_path):
    """Clipping to a tiny norm leaves W's step as it is (W is outside the configured optimizer and the
    authors clip neither unitary model); tests/test_authors_baselines.py checks the gradients."""
    steps = {}
    for clip in (None, 1e-6):
        L.seed_everything(0, verbose=False)
        datamodule = AddingDataModule(seq_len=6, train_size=32, val_size=8, test_size=8, batch_size=16)
        model = FURNN(
            task=datamodule.task.as_dict(), hidden_size=4, manifold_lr=0.5, optimizer=partial(torch.optim.SGD, lr=0.0)
        )
        w0 = model.core.recurrent_matrix()
        quiet_trainer(max_steps=1, gradient_clip_val=clip).fit(model, datamodule)
        steps[clip] = (model.core.recurrent_matrix() - w0).abs().max().item()
    assert steps[None] > 1e-3  # SGD with lr 0 cannot have moved W: the Cayley step did
    assert steps[1e-6] == pytest.approx(steps[None], rel=1e-5)


DDP_SCRIPT = """
import sys, torch, lightning as L
from functools import partial
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import FURNN

out = sys.argv[1]
L.seed_everything(0, verbose=False)
datamodule = AddingDataModule(seq_len=6, train_size=64, val_size=8, test_size=8, batch_size=4)
model = FURNN(task=datamodule.task.as_dict(), hidden_size=6, manifold_lr=0.2,
              optimizer=partial(torch.optim.Adam, lr=1e-2))
w0 = model.core.recurrent_matrix()
trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=20, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                    limit_val_batches=0, gradient_clip_val=1.0)
trainer.fit(model, datamodule)
torch.save({"w0": w0, "state": model.state_dict()}, f"{out}/rank{trainer.global_rank}.pt")
"""


def test_furnn_cayley_steps_agree_across_ddp_ranks(tmp_path):
    """DDP all-reduces W's gradient before the Cayley step: both ranks' W stay identical."""
    script = tmp_path / "furnn_ddp.py"
    script.write_text(DDP_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], value, atol=0, rtol=0, msg=f"{name} differs across ranks")
    w = torch.view_as_complex(ranks[0]["state"]["core.weight"])
    assert (w - ranks[0]["w0"]).abs().max() > 0.01
    assert unitarity_error(w) < 1e-5
