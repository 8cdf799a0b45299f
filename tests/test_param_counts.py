"""Parameter counts of the copy and adding configs, built by the real CLI parser, against formulas
written out here and against the KRU paper's tables (within 10%, or the documented exception)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kruzoo.cli.main import build_cli
from kruzoo.sequence_model import SequenceModel

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI.s args parameter")

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MODELS = ("rnn", "lstm", "gru", "urnn", "furnn", "kru", "kru_lstm")
TASKS = {"adding": (2, 1), "copy": (10, 9)}  # input size d, output size o


def expected_count(model: str, n: int, d: int, o: int, factors: int = 0) -> int:
    """Total parameters from the architectures: ``factors`` is the number of 2×2 factors."""
    real_readout = n * o + o
    complex_core = 2 * n * d + n + (2 * n) * o + o  # complex U, modReLU bias, readout from [Re h; Im h]
    return {
        "rnn": (d * n + n * n + 2 * n) + real_readout,
        "lstm": 4 * (d * n + n * n + 2 * n) + real_readout,
        "gru": 3 * (d * n + n * n + 2 * n) + real_readout,
        "urnn": 7 * n + 2 * n + complex_core,  # 3 phase vectors, 2 complex reflection vectors, learned h_0
        "furnn": 2 * n * n + 2 * n + complex_core,  # W, learned h_0
        "kru": factors * 2 * 4 + complex_core,  # complex 2×2 factors
        "kru_lstm": 4 * (d * n + n) + 4 * factors * 4 + real_readout,  # one bias per gate; real 2×2 factors
    }[model]


# (task, model) -> (hidden size, number of 2×2 factors, the paper's count or None if not in its tables)
SIZES = {
    ("adding", "rnn"): (128, 0, 17_000),
    ("adding", "lstm"): (128, 0, 67_000),
    ("adding", "gru"): (128, 0, None),
    ("adding", "urnn"): (512, 0, 7_000),
    ("adding", "furnn"): (128, 0, 33_000),
    ("adding", "kru"): (512, 9, 3_000),
    ("adding", "kru_lstm"): (128, 7, None),
    ("copy", "rnn"): (128, 0, 19_000),
    ("copy", "lstm"): (128, 0, 72_000),
    ("copy", "gru"): (128, 0, None),
    ("copy", "urnn"): (470, 0, 21_000),
    ("copy", "furnn"): (128, 0, 37_000),
    ("copy", "kru"): (128, 7, 5_000),
    ("copy", "kru_lstm"): (128, 7, None),
}
# The paper's ≈3K for KRU on adding is not reachable from its stated architecture (see the config's
# header): our count, explained there, is asserted exactly instead of the 10% band.
# uRNN on adding: the paper's ≈7K is the model without the learned h_0 that the authors' code trains.
DOCUMENTED_EXCEPTIONS = {("adding", "kru"): 3_657, ("adding", "urnn"): 8_193}


def build(config: Path) -> SequenceModel:
    return build_cli(["--config", str(config), "--trainer.logger", "false"], run=False).model


def test_every_model_has_copy_and_adding_configs():
    for task in TASKS:
        assert {p.stem for p in (CONFIGS / task).glob("*.yaml")} >= set(MODELS), task


@pytest.mark.parametrize(("task", "model"), sorted(SIZES))
def test_config_parameter_count(task, model):
    config = CONFIGS / task / f"{model}.yaml"
    n, factors, paper = SIZES[task, model]
    built = build(config)
    assert built.core.hidden_size == n
    total = built.parameter_counts()["total"]
    assert total == expected_count(model, n, *TASKS[task], factors=factors)
    header = "".join(line for line in config.read_text().splitlines(keepends=True) if line.startswith("#"))
    if (task, model) in DOCUMENTED_EXCEPTIONS:
        assert total == DOCUMENTED_EXCEPTIONS[task, model]
        assert f"{total:,}" in header, f"{config} must explain its count {total:,}"
    elif paper is not None:
        assert abs(total - paper) <= 0.1 * paper, f"{config}: {total:,} vs the paper's ≈{paper:,}"
    else:  # not in the paper: the header states our count
        assert f"{total:,}" in header, f"{config} must state its count {total:,}"


REAL_DATA = ("mnist", "pmnist", "ptb", "jsb", "nottingham", "musedata", "pianomidi", "timit")
# The paper's pMNIST counts (Arjovsky et al.'s and Wisdom et al.'s models as the KRU paper lists them).
PAPER_PMNIST = {"urnn": (512, 16_000), "furnn": (512, 540_000)}


@pytest.mark.parametrize("folder", REAL_DATA)
@pytest.mark.parametrize("model", ["urnn", "furnn", "kru_lstm"])
def test_real_data_zoo_config_states_its_count(folder, model):
    """The real-data configs of the zoo's models build (datamodules are not touched on disk) and
    their headers state their exact count; on pMNIST the paper's uRNN/fuRNN counts hold within 10%."""
    config = CONFIGS / folder / f"{model}.yaml"
    built = build(config)
    counts = built.parameter_counts()
    assert f"{counts['total']:,} parameters ({counts['recurrent']:,} recurrent)" in config.read_text()
    if folder == "pmnist" and model in PAPER_PMNIST:
        n, paper = PAPER_PMNIST[model]
        assert built.core.hidden_size == n
        assert abs(counts["total"] - paper) <= 0.1 * paper
