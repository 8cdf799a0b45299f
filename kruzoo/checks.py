"""Checks of user-given values, each failing with a message that names the value and what is allowed.

Three kinds: numeric hyperparameters (:func:`check_hyperparameters`, run by ``SequenceModel`` at
construction for every model of the zoo, so a new model gets them for free), model inputs
(:func:`check_forward_inputs`, run by every ``forward``) and batches from a datamodule
(:func:`check_batch`: the dict contract, and non-finite values, located to the sample).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import Tensor

# name -> (kind, low, low_inclusive, description): every numeric hyperparameter a model of the
# zoo takes. A name not listed here but numeric must still be finite.
HYPERPARAMETER_RANGES: dict[str, tuple[str, float, bool, str]] = {
    "hidden_size": ("int", 1, True, "a positive integer"),
    "factor_size": ("int", 2, True, "an integer ≥ 2"),
    "penalty_weight": ("float", 0.0, True, "a finite number ≥ 0 (0 turns the penalty off)"),
    "eps": ("float", 0.0, False, "a finite number > 0 (modReLU's |z| + eps)"),
    "recurrent_lr_scale": ("float", 0.0, False, "a finite number > 0 (the factors' lr over the optimizer's lr)"),
    "manifold_lr": ("float", 0.0, False, "a finite number > 0 (the Cayley step size for W)"),
}


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_number(name: str, value, kind: str = "float", low: float | None = None, low_inclusive: bool = True,
                 high: float | None = None, high_inclusive: bool = True, what: str | None = None):
    """``value`` if it is a number of ``kind`` ("int" or "float") within the bounds, else ValueError
    ``<name> must be <what>, got <value>``."""
    if what is None:
        parts = ["an integer" if kind == "int" else "a finite number"]
        if low is not None:
            parts.append(f"{'≥' if low_inclusive else '>'} {low}")
        if high is not None:
            parts.append(f"{'≤' if high_inclusive else '<'} {high}")
        what = " ".join(parts)
    ok = _is_number(value) and (isinstance(value, Integral) if kind == "int" else math.isfinite(float(value)))
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_hyperparameters(owner: str, hparams: dict) -> None:
    """Every numeric hyperparameter of a model within its range (``HYPERPARAMETER_RANGES``);
    any other number finite. ``owner`` (the class name) prefixes nothing: the message starts
    with the hyperparameter's name, as the catalogue (docs/bad_inputs.md) lists it."""
    for name, value in hparams.items():
        if name in HYPERPARAMETER_RANGES and value is not None:
            kind, low, inclusive, what = HYPERPARAMETER_RANGES[name]
            check_number(name, value, kind, low, inclusive, what=what)
        elif _is_number(value) and not math.isfinite(float(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r} ({owner})")


def check_forward_inputs(inputs, input_size: int, owner: str) -> None:
    """A model's ``inputs``: a floating (B, T, input_size) tensor with B, T ≥ 1."""
    if not isinstance(inputs, Tensor):
        raise TypeError(f"{owner} expects inputs as a torch.Tensor of shape (B, T, {input_size}), "
                        f"got {type(inputs).__name__}")
    if inputs.dim() != 3:
        raise ValueError(f"{owner} expects inputs of shape (batch B, time T, features {input_size}), "
                         f"got a {inputs.dim()}-D tensor of shape {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise TypeError(f"{owner} expects floating-point inputs (float32), got {inputs.dtype}; "
                        f"convert them with inputs.float() (one-hot encode class indices)")
    B, T, d = inputs.shape
    if d != input_size:
        raise ValueError(f"{owner} was built for {input_size} input features per step, got inputs of "
                         f"shape {tuple(inputs.shape)} ({d} features)")
    if T == 0:
        raise ValueError(f"{owner} got inputs with T = 0 time steps (shape {tuple(inputs.shape)}): "
                         f"a sequence needs at least one step")
    if B == 0:
        raise ValueError(f"{owner} got an empty batch (shape {tuple(inputs.shape)})")


class NonFiniteDataError(ValueError):
    """A batch from the datamodule holds NaN or ±inf in its inputs or targets."""


class BatchContractError(TypeError):
    """A datamodule's batch is not the dict ``{"inputs", "targets"[, "mask"]}`` the models expect."""


def check_batch(batch, stage: str, input_size: int, datamodule=None, batch_idx: int | None = None,
                needs_targets: bool = True) -> None:
    """The datamodule contract (a dict with float (B, T, d) ``inputs`` and ``targets``) and finite
    values; a non-finite value is located to its sample (``datamodule.datasets[split]``)."""
    if not isinstance(batch, dict) or "inputs" not in batch or (needs_targets and "targets" not in batch):
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise BatchContractError(
            f"a {stage} batch must be a dict with 'inputs' (B, T, {input_size}) and 'targets' (see "
            f"kruzoo.task.TaskSpec), got {keys}; the datamodule's dataset or collate_fn breaks the contract"
        )
    for key in ("inputs", "targets") if needs_targets else ("inputs",):
        value = batch[key]
        if not isinstance(value, Tensor):
            raise BatchContractError(f"a {stage} batch's {key!r} must be a torch.Tensor, got {type(value).__name__}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            kind = "NaN" if bool(torch.isnan(value).any()) else "inf"
            raise NonFiniteDataError(_locate(value, key, kind, stage, datamodule, batch_idx))


SPLIT_OF_STAGE = {"train": "train", "val": "val", "test": "test", "predict": "test"}


def _locate(value: Tensor, key: str, kind: str, stage: str, datamodule, batch_idx: int | None) -> str:
    bad = ~torch.isfinite(value)
    row = int(bad.reshape(len(bad), -1).any(1).nonzero()[0, 0])
    split = SPLIT_OF_STAGE.get(stage, stage)
    where = f"batch {batch_idx}, row {row}" if batch_idx is not None else f"row {row} of a batch"
    sample = _find_sample(datamodule, split, key)
    place = f"sample {sample} of split {split}" if sample is not None else f"split {split} ({where})"
    return (f"the data contains {kind} at {place} (in its {key!r}); fix or drop that sample: "
            f"a non-finite input or target makes every loss and gradient non-finite")


def _find_sample(datamodule, split: str, key: str, limit: int = 200_000) -> int | None:
    """Index of the first sample of ``datamodule.datasets[split]`` with a non-finite ``key``."""
    dataset = getattr(datamodule, "datasets", {}).get(split) if datamodule is not None else None
    if dataset is None or getattr(datamodule.task, "stateful", False):
        return None
    try:
        for i in range(min(len(dataset), limit)):
            item = dataset[i]
            value = item.get(key) if isinstance(item, dict) else None
            if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                return i
    except Exception:  # noqa: BLE001 - locating is best effort; the error is raised anyway
        return None
    return None


def state_dict_mismatches(own: dict[str, Tensor], theirs: dict[str, Tensor], unexpected: bool = False) -> list[str]:
    """``key: checkpoint (shape) vs model (shape)`` and ``key: missing from the checkpoint`` lines (and,
    with ``unexpected``, ``key: not in the model``) between a model's and a checkpoint's state dicts."""
    problems = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                for k, v in theirs.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    problems += [f"{k}: missing from the checkpoint" for k in own if k not in theirs]
    if unexpected:
        problems += [f"{k}: not in the model" for k in theirs if k not in own]
    return problems
