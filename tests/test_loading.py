"""models/loading.py, the one checkpoint → model loader: readability errors that name the file,
the model class from a registered name or the recorded class path, and the model it builds."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer

from kruzoo import pretrained
from kruzoo.models import KRU, LSTM, loading
from kruzoo.task import TaskSpec

TASK = TaskSpec(input_size=2, output_size=1, loss="mse", target="last").as_dict()


def saved(tmp_path, model, name="model.ckpt"):
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_steps=0)
    trainer.strategy.connect(model)
    path = tmp_path / name
    trainer.save_checkpoint(path)
    return path


def test_read_checkpoint_names_a_truncated_or_foreign_file(tmp_path):
    good = saved(tmp_path, KRU(task=TASK, hidden_size=4))
    assert "state_dict" in loading.read_checkpoint(good)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(
        loading.CheckpointError,
        match=rf"--ckpt_path {cut} is not a readable checkpoint: it is "
        r"truncated or corrupt \(.*\); try another",
    ):
        loading.read_checkpoint(cut, label=f"--ckpt_path {cut}", advice="try another")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(loading.CheckpointError, match="is not a Lightning checkpoint \\(no 'state_dict' entry\\)"):
        loading.read_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint file at"):
        loading.read_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("class_path", ["kruzoo.models.KRU", "kruzoo.models.kru.KRU", "KRU"])
def test_zoo_classes_resolve_by_any_of_their_paths(class_path):
    assert loading.class_from_path(class_path) is KRU


def test_other_class_paths_are_imported_and_must_be_sequence_models():
    with pytest.raises(loading.CheckpointError, match="'collections.OrderedDict' is not a kruzoo SequenceModel"):
        loading.class_from_path("collections.OrderedDict")
    with pytest.raises(loading.CheckpointError, match="cannot import the model class 'nowhere.Model'"):
        loading.class_from_path("nowhere.Model")


def test_load_model_rebuilds_the_model_and_refuses_another_class(tmp_path):
    torch.manual_seed(3)
    original = KRU(task=TASK, hidden_size=8)
    path = saved(tmp_path, original)
    model = loading.load_model(path)
    assert type(model) is KRU and model.hparams.hidden_size == 8
    torch.testing.assert_close(model.recurrent_matrix(), original.recurrent_matrix())
    with pytest.raises(loading.CheckpointError, match="written by kruzoo.models.kru.KRU, but --model lstm is LSTM"):
        loading.load_model(path, "lstm")
    checkpoint = loading.read_checkpoint(path)
    del checkpoint["kruzoo_model"]
    with pytest.raises(loading.CheckpointError, match="does not record its model class.*pass --model NAME"):
        loading.load_model(checkpoint)
    assert type(loading.load_model(saved(tmp_path, LSTM(task=TASK, hidden_size=4), "lstm.ckpt"))) is LSTM


def test_pretrained_load_goes_through_the_loader():
    model = pretrained.load("lstm_adding_t100")
    reference = loading.load_model(pretrained.path("lstm_adding_t100"))
    assert not model.training and model.pretrained_info["model"] == "lstm"
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
