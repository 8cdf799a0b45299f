"""The datamodule contract, checked when a split's loader is first built (see ``base.py``).

Each broken rule raises :class:`DataContractError` whose message names the datamodule, the split,
the item and the rule, e.g. ``AddingDataModule split 'train' item 0: 'inputs' has 3 features per
step (shape (100, 3)), but task.input_size is 2``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from kruzoo.task import TaskSpec

SPLITS = ("train", "val", "test")
SAMPLES_CHECKED = 8  # items per split: the first, the last and evenly spaced ones between


class DataContractError(ValueError):
    """A datamodule's split or item breaks the contract of ``kruzoo.datamodules.SequenceDataModule``."""


def check_split_present(owner: str, datasets: dict, split: str) -> None:
    if split not in datasets:
        raise DataContractError(
            f"{owner}.setup() did not fill self.datasets[{split!r}] (it has {sorted(datasets) or 'none'}): "
            f"setup must put a dataset under each of {', '.join(map(repr, SPLITS))}"
        )
    try:
        n = len(datasets[split])
    except TypeError as error:
        raise DataContractError(f"{owner} split {split!r}: the dataset must have a length (a map-style "
                                f"torch Dataset with __len__ and __getitem__)") from error
    if n == 0:
        raise DataContractError(f"{owner} split {split!r} is empty: every split needs at least one sequence")


def _where(owner: str, split: str, index: int) -> str:
    return f"{owner} split {split!r} item {index}"


def check_item(item, task: TaskSpec, owner: str, split: str, index: int) -> None:
    """One item of a non-stream task: ``{"inputs": (T, input_size) float, "targets": …[, "mask": (T,) bool]}``."""
    where = _where(owner, split, index)
    if not isinstance(item, dict):
        raise DataContractError(
            f"{where} is a {type(item).__name__}, but items must be dicts {{'inputs': …, 'targets': …"
            f"[, 'mask': …]}}: return a dict from the dataset's __getitem__ (not a tuple)"
        )
    missing = [k for k in ("inputs", "targets") if k not in item]
    if missing:
        raise DataContractError(f"{where} lacks {missing} (has {sorted(item)}): items hold 'inputs' and "
                                f"'targets' (and optionally 'mask')")
    for key in ("inputs", "targets", "mask"):
        if key in item and not isinstance(item[key], Tensor):
            raise DataContractError(f"{where}: {key!r} must be a torch.Tensor, got {type(item[key]).__name__}")
    inputs, targets = item["inputs"], item["targets"]
    if inputs.dim() != 2:
        raise DataContractError(f"{where}: 'inputs' must be (T, input_size={task.input_size}), got shape "
                                f"{tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise DataContractError(f"{where}: 'inputs' must be floating point (float32), got {inputs.dtype}; "
                                f"one-hot encode class inputs")
    steps, features = inputs.shape
    if features != task.input_size:
        raise DataContractError(f"{where}: 'inputs' has {features} features per step (shape {tuple(inputs.shape)}), "
                                f"but task.input_size is {task.input_size}")
    if steps == 0:
        raise DataContractError(f"{where}: 'inputs' has no time steps (shape {tuple(inputs.shape)})")
    mask = item.get("mask")
    if mask is not None:
        if task.target != "every":
            raise DataContractError(f"{where}: a 'mask' only applies to task.target='every' (every step scored); "
                                    f"this task is scored at the last step")
        if mask.dtype != torch.bool or tuple(mask.shape) != (steps,):
            raise DataContractError(f"{where}: 'mask' must be bool of shape (T,) = ({steps},), got {mask.dtype} "
                                    f"{tuple(mask.shape)}")
    classes = task.loss == "cross_entropy"
    expected: tuple[int, ...]
    if task.target == "last":
        expected = () if classes else (task.output_size,)
        what = "a class index, shape ()" if classes else f"(output_size,) = ({task.output_size},)"
    else:
        expected = (steps,) if classes else (steps, task.output_size)
        what = f"class indices of shape (T,) = ({steps},)" if classes else f"(T, output_size) = {expected}"
    if tuple(targets.shape) != expected:
        raise DataContractError(f"{where}: 'targets' must be {what} for task loss={task.loss!r}, "
                                f"target={task.target!r}; got shape {tuple(targets.shape)}")
    counted = targets if mask is None else targets[mask]
    if classes:
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise DataContractError(f"{where}: cross-entropy 'targets' must be integer class indices (int64), "
                                    f"got {targets.dtype}")
        if counted.numel() and (int(counted.min()) < 0 or int(counted.max()) >= task.output_size):
            bad = int(counted.min()) if int(counted.min()) < 0 else int(counted.max())
            raise DataContractError(f"{where}: label {bad} is out of range: task.output_size is {task.output_size}, "
                                    f"so labels must lie in 0..{task.output_size - 1}")
    else:
        if not targets.is_floating_point():
            raise DataContractError(f"{where}: {task.loss} 'targets' must be floating point, got {targets.dtype}")
        if task.loss == "bernoulli" and counted.numel() and not bool(((counted == 0) | (counted == 1)).all()):
            raise DataContractError(f"{where}: bernoulli 'targets' must be 0 or 1 (multi-label), got values "
                                    f"{sorted(set(counted.flatten().tolist()))[:5]}")


def check_dataset(owner: str, datasets: dict, split: str, task: TaskSpec) -> None:
    """The split exists and its first, last and a few evenly spaced items keep the contract."""
    check_split_present(owner, datasets, split)
    if task.stateful:  # stream tasks serve whole batches of windows; checked batch by batch
        return
    dataset = datasets[split]
    n = len(dataset)
    picks = sorted({0, n - 1, *(round(k * (n - 1) / (SAMPLES_CHECKED - 1)) for k in range(SAMPLES_CHECKED))})
    for i in picks:
        check_item(dataset[i], task, owner, split, i)
