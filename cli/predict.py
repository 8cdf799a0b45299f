"""``kruzoo predict`` keeps its predictions: one ``.pt`` file per rank.

Every rank writes ``<predictions_dir>/predictions_rank<r>.pt`` (default ``predictions_dir``: the
run folder's ``predictions/``), a ``torch.save`` of plain tensors, lists and numbers, loadable with
``torch.load(path, weights_only=True)``:

- ``indices`` (n,) int64: the index of each sequence in the split predicted (``split``: the
  datamodule's ``test`` split, or ``"predict_input"`` for a file given with ``--predict_input``),
  so the files of all ranks together cover the split once (DDP shards it);
- ``outputs``: the model's raw outputs, (n, output_size) for a task scored at the last step,
  (n, T, output_size) for one scored at every step (logits for cross-entropy and Bernoulli
  tasks, values for MSE), zero-padded to the longest sequence when lengths differ;
- ``predictions``: class indices (n,) or (n, T) for cross-entropy, probabilities for Bernoulli
  (absent for MSE: the outputs are the predictions);
- ``mask`` (n, T) bool, for every-step tasks: the steps that are real (not padding) and scored;
- ``task`` (the TaskSpec as a dict), ``rank``, ``world_size``.

For stream tasks (``task.stateful``, PTB: each batch is the next window of every stream) a row is
one window of one stream: ``indices`` is the window's number and ``streams`` the stream's (within
this rank's shard).

``--predict_input FILE`` predicts custom sequences instead of the test split: a ``.npy`` array
(``allow_pickle=False``) or a ``.pt`` file (``weights_only=True``) holding a tensor, or a dict with
``inputs`` (and optionally ``mask``); shape (T, input_size) for one sequence or (B, T,
input_size) for B of the same length, float.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset


class PredictInputError(ValueError):
    """A ``--predict_input`` file that is not a batch of input sequences for the model."""


def load_predict_input(path: str | Path, input_size: int) -> dict[str, torch.Tensor]:
    """``{"inputs": (B, T, input_size) float32[, "mask": (B, T) bool]}`` from a .npy or .pt file."""
    path = Path(path)
    if not path.is_file():
        raise PredictInputError(f"--predict_input {path}: no such file (expected a .npy or .pt file)")
    mask = None
    if path.suffix == ".npy":
        try:
            value = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise PredictInputError(f"--predict_input {path}: not a plain numeric .npy array ({error})") from error
    elif path.suffix == ".pt":
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # unreadable, or not plain tensors
            raise PredictInputError(f"--predict_input {path}: not a .pt file of plain tensors "
                                    f"({type(error).__name__}: {str(error).splitlines()[0]})") from error
        if isinstance(value, dict):
            if "inputs" not in value:
                raise PredictInputError(f"--predict_input {path}: a dict must hold 'inputs' (and optionally "
                                        f"'mask'), got keys {sorted(value)}")
            mask, value = value.get("mask"), value["inputs"]
    else:
        raise PredictInputError(f"--predict_input {path}: unknown file type {path.suffix!r}; give a .npy or .pt file")
    if isinstance(value, (list, tuple)):
        raise PredictInputError(f"--predict_input {path}: give one array of shape (T, {input_size}) or "
                                f"(B, T, {input_size}) of sequences of one length, not a {type(value).__name__}; "
                                "for several lengths run predict once per length")
    inputs = torch.as_tensor(value)
    if not (inputs.is_floating_point() or inputs.dtype in (torch.int32, torch.int64, torch.uint8, torch.bool)):
        raise PredictInputError(f"--predict_input {path}: inputs must be numbers, got dtype {inputs.dtype}")
    if inputs.dim() == 2:
        inputs = inputs[None]
    if inputs.dim() != 3 or inputs.shape[-1] != input_size or inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise PredictInputError(
            f"--predict_input {path}: inputs of shape {tuple(torch.as_tensor(value).shape)}, but the model "
            f"takes (T, {input_size}) or (B, T, {input_size}) with T, B ≥ 1 ({input_size} features per step; "
            "class inputs one-hot encoded)"
        )
    inputs = inputs.float()
    if not bool(torch.isfinite(inputs).all()):
        raise PredictInputError(f"--predict_input {path}: inputs contain NaN or inf")
    out = {"inputs": inputs}
    if mask is not None:
        mask = torch.as_tensor(mask).bool()
        if mask.dim() == 1:
            mask = mask[None]
        if tuple(mask.shape) != tuple(inputs.shape[:2]):
            raise PredictInputError(f"--predict_input {path}: mask of shape {tuple(mask.shape)}, expected (B, T) = "
                                    f"{tuple(inputs.shape[:2])}")
        out["mask"] = mask
    return out


class InputSequences(Dataset):
    """The sequences of a ``--predict_input`` file as dict items."""

    def __init__(self, data: dict[str, torch.Tensor]):
        self.data = data

    def __len__(self) -> int:
        return len(self.data["inputs"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.data.items()}


def predict_input_loader(path: str | Path, input_size: int, batch_size: int) -> DataLoader:
    return DataLoader(InputSequences(load_predict_input(path, input_size)), batch_size=batch_size, shuffle=False)


def _pad_cat(tensors: list[torch.Tensor], fill=0) -> torch.Tensor:
    """Concatenate along dim 0, zero-padding dim 1 (time) to the longest."""
    if not tensors:
        return torch.empty(0)
    if tensors[0].dim() < 2 or len({t.shape[1] for t in tensors}) == 1:
        return torch.cat(tensors)
    longest = max(t.shape[1] for t in tensors)
    padded = []
    for t in tensors:
        pad = t.new_full((t.shape[0], longest - t.shape[1], *t.shape[2:]), fill)
        padded.append(torch.cat([t, pad], 1))
    return torch.cat(padded)


class PredictionWriter(BasePredictionWriter):
    """Collects each batch's outputs (on the CPU) and writes this rank's file at the epoch's end."""

    def __init__(self, output_dir: str | Path | None = None, split: str = "test"):
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir) if output_dir else None
        self.split = split
        self.paths: list[Path] = []
        self._reset()

    def _reset(self) -> None:
        self._indices: list[torch.Tensor] = []
        self._outputs: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []
        self._streams: list[torch.Tensor] = []
        self._seen = 0

    def on_predict_epoch_start(self, trainer, pl_module) -> None:
        self._reset()

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        outputs = prediction.detach().float().cpu()
        n = outputs.shape[0]
        if pl_module.task.stateful:  # row b of window batch_idx is stream b's window
            self._streams.append(torch.arange(n))
            batch_indices = [batch_idx] * n
        elif batch_indices is None or len(batch_indices) != n:  # no sampler to ask: count
            world, rank = trainer.world_size, trainer.global_rank
            batch_indices = [(self._seen + j) * world + rank for j in range(n)]
        self._seen += n
        self._indices.append(torch.as_tensor(list(batch_indices), dtype=torch.int64))
        self._outputs.append(outputs)
        if pl_module.task.target == "every":
            mask = batch.get("mask") if isinstance(batch, dict) else None
            mask = torch.ones(outputs.shape[:2], dtype=torch.bool) if mask is None else mask.detach().bool().cpu()
            self._masks.append(mask)

    def directory(self, trainer) -> Path:
        if self.output_dir is not None:
            return self.output_dir
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        return Path(log_dir or trainer.default_root_dir) / "predictions"

    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        task = pl_module.task
        outputs = _pad_cat(self._outputs)
        record = {
            "indices": torch.cat(self._indices) if self._indices else torch.empty(0, dtype=torch.int64),
            "outputs": outputs,
            "task": task.as_dict(),
            "split": self.split,
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
        }
        if task.target == "every":
            record["mask"] = _pad_cat(self._masks, fill=False)
        if self._streams:
            record["streams"] = torch.cat(self._streams)
        if task.loss == "cross_entropy" and outputs.numel():
            record["predictions"] = outputs.argmax(-1)
        elif task.loss == "bernoulli" and outputs.numel():
            record["predictions"] = torch.sigmoid(outputs)
        folder = self.directory(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"predictions_rank{trainer.global_rank}.pt"
        tmp = path.with_suffix(".pt.tmp")
        torch.save(record, tmp)
        tmp.replace(path)
        self.paths = [folder / f"predictions_rank{r}.pt" for r in range(trainer.world_size)]
        self.count = len(record["indices"])
        self._reset()
