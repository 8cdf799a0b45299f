"""The core contract (``kruzoo/cores/base.py``): every registered model's core satisfies it, the
penalty is weighted once by ``SequenceModel``, the zoo's parameter order (the checkpoint format)
stays as shipped, and cores that break the contract fail the same check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import kruzoo
from kruzoo.cores import RecurrentCore
from kruzoo.models import LSTM
from kruzoo.task import TaskSpec

INPUT = 3
TASK = TaskSpec(input_size=INPUT, output_size=2, loss="cross_entropy", target="every").as_dict()


def _run(core, x, state=None, last_only=False):
    out = core(x, state, last_only=last_only)
    assert isinstance(out, tuple) and len(out) == 2, "forward must return (features, state)"
    return out


def check_core_contract(core: nn.Module, input_size: int) -> None:
    """Raises AssertionError naming the first rule of the contract ``core`` breaks."""
    assert isinstance(core, RecurrentCore), f"{type(core).__name__} is not a kruzoo.cores.RecurrentCore"
    assert isinstance(core.hidden_size, int) and core.hidden_size > 0, "hidden_size must be a positive int"
    assert isinstance(core.feature_size, int) and core.feature_size > 0, "feature_size must be a positive int"
    core = core.double()
    B, T, F = 3, 6, core.feature_size
    x = torch.randn(B, T, input_size, dtype=torch.float64)

    # forward: (B, T, F) features; last_only: the last step's, same values and gradients
    grads = []
    for last_only in (False, True):
        core.zero_grad()
        features, _ = _run(core, x, last_only=last_only)
        expected = (B, 1, F) if last_only else (B, T, F)
        assert tuple(features.shape) == expected, f"last_only={last_only}: features {tuple(features.shape)}, not {expected}"
        assert features.dtype == torch.float64, f"features are {features.dtype}, not the inputs' float dtype"
        last = features[:, -1]
        (last.square().sum() + last.sum()).backward()
        grads.append((last.detach(), [None if p.grad is None else p.grad.clone() for p in core.parameters()]))
    (f_all, g_all), (f_last, g_last) = grads
    torch.testing.assert_close(f_last, f_all, msg="last_only features are not the last step's")
    for a, b in zip(g_all, g_last):
        assert (a is None) == (b is None), "last_only reaches other parameters than the full features"
        if a is not None:
            torch.testing.assert_close(b, a, msg="last_only gives other gradients")

    # state: a stream continued from the returned state equals one run over the whole stream
    with torch.no_grad():
        whole, _ = _run(core, x)
        first, state = _run(core, x[:, :2])
        rest, _ = _run(core, x[:, 2:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole,
                               msg="continuing from the returned state differs from one run")

    # recurrent_matrix: dense, detached, (G·N) × N
    w = core.recurrent_matrix()
    assert isinstance(w, torch.Tensor) and w.dim() == 2, "recurrent_matrix() must be a matrix"
    n = core.hidden_size
    assert w.shape[1] == n and w.shape[0] % n == 0, f"recurrent_matrix() is {tuple(w.shape)}, not (G·{n}, {n})"
    assert not w.requires_grad, "recurrent_matrix() must be detached"

    # recurrent_parameters: a non-empty subset of parameters()
    recurrent = list(core.recurrent_parameters())
    own = {id(p) for p in core.parameters()}
    assert recurrent, "recurrent_parameters() is empty"
    assert all(isinstance(p, nn.Parameter) and id(p) in own for p in recurrent), \
        "recurrent_parameters() must be parameters of the core"

    # penalty: None or a non-negative scalar that reaches the trained recurrent parameters
    penalty = core.penalty()
    if penalty is not None:
        assert isinstance(penalty, torch.Tensor) and penalty.dim() == 0 and not penalty.is_complex(), \
            "penalty() must be a real scalar tensor or None"
        assert penalty.item() >= 0, "penalty() must be non-negative"
        trained = [p for p in recurrent if p.requires_grad]
        assert trained, "penalty() of a core whose recurrence is not trained must be None"
        assert penalty.requires_grad, "penalty() does not depend on the recurrent parameters"
        g = torch.autograd.grad(penalty, trained, allow_unused=True)
        assert any(gi is not None for gi in g), "penalty() does not depend on the recurrent parameters"


@pytest.mark.parametrize("name", kruzoo.list_models())
def test_every_registered_core_satisfies_the_contract(name):
    torch.manual_seed(0)
    model = kruzoo.create_model(name, task=TASK, hidden_size=8)
    with torch.no_grad():  # away from the initialisation (unitary factors have a zero penalty)
        for p in model.core.recurrent_parameters():
            p.add_(0.1 * torch.randn_like(p))
    check_core_contract(model.core, INPUT)
    assert model.head.readout.in_features == model.core.feature_size


@pytest.mark.parametrize("name", kruzoo.list_models())
def test_sequence_model_weights_the_core_penalty_once(name):
    model = kruzoo.create_model(name, task=TASK, hidden_size=8)
    with torch.no_grad():
        for p in model.core.recurrent_parameters():
            p.add_(0.1 * torch.randn_like(p))
    raw = model.core.penalty()
    model.penalty_weight = 0.0
    assert model.penalty() is None
    model.penalty_weight = 0.25
    if raw is None:
        assert model.penalty() is None
    else:
        torch.testing.assert_close(model.penalty(), 0.25 * raw)


def test_penalty_weight_reaches_the_models_that_take_it():
    for name in ("kru", "kru_lstm"):
        model = kruzoo.create_model(name, task=TASK, hidden_size=8, penalty_weight=0.5)
        with torch.no_grad():
            for p in model.core.recurrent_parameters():
                p.mul_(2.0)
        torch.testing.assert_close(model.penalty(), 0.5 * model.core.penalty())
    frozen = kruzoo.create_model("kru", task=TASK, hidden_size=8, penalty_weight=0.5, freeze_recurrence=True)
    assert frozen.penalty() is None


# The order of parameters() is the optimizer-state order in checkpoints (the shipped ones
# included): a change here breaks loading them. hidden_size 4, two 2×2 factors.
PARAMETER_ORDER = {
    "furnn": ["core.weight", "core.bias", "core.input_proj.weight", "core.h0.weight"],
    "gru": ["core.rnn.weight_ih_l0", "core.rnn.weight_hh_l0", "core.rnn.bias_ih_l0", "core.rnn.bias_hh_l0"],
    "kru": ["core.bias", "core.input_proj.weight", "core.factors.weights.0", "core.factors.weights.1"],
    "kru_lstm": ["core.input_proj.weight", "core.input_proj.bias"]
    + [f"core.gate_factors.{g}.{i}" for g in range(4) for i in range(2)],
    "lstm": ["core.rnn.weight_ih_l0", "core.rnn.weight_hh_l0", "core.rnn.bias_ih_l0", "core.rnn.bias_hh_l0"],
    "rnn": ["core.rnn.weight_ih_l0", "core.rnn.weight_hh_l0", "core.rnn.bias_ih_l0", "core.rnn.bias_hh_l0"],
    "urnn": ["core.phases", "core.reflections", "core.bias", "core.input_proj.weight", "core.h0.weight"],
}


@pytest.mark.parametrize("name", sorted(PARAMETER_ORDER))
def test_parameter_order_of_the_zoo_is_the_checkpoint_format(name):
    model = kruzoo.create_model(name, task=TASK, hidden_size=4)
    assert [n for n, _ in model.named_parameters()] == PARAMETER_ORDER[name] + ["head.readout.weight",
                                                                                "head.readout.bias"]


# -- cores that break the contract fail it ------------------------------------------------------
class _GoodCore(RecurrentCore):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = self.feature_size = hidden_size
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)

    def forward(self, x, state=None, last_only=False):
        features, state = self.rnn(x, state)
        return (features[:, -1:] if last_only else features), state

    def recurrent_matrix(self):
        return self.rnn.weight_hh_l0.detach()

    def recurrent_parameters(self):
        return [self.rnn.weight_hh_l0]


class _FirstStepCore(_GoodCore):
    def forward(self, x, state=None, last_only=False):
        features, state = self.rnn(x, state)
        return (features[:, :1] if last_only else features), state


class _ForgetfulCore(_GoodCore):
    def forward(self, x, state=None, last_only=False):
        return super().forward(x, None, last_only)


class _AttachedMatrixCore(_GoodCore):
    def recurrent_matrix(self):
        return self.rnn.weight_hh_l0


class _ForeignParameterCore(_GoodCore):
    def recurrent_parameters(self):
        return [nn.Parameter(torch.zeros(2))]


class _NegativePenaltyCore(_GoodCore):
    def penalty(self):
        return -self.rnn.weight_hh_l0.square().sum()


class _ConstantPenaltyCore(_GoodCore):
    def penalty(self):
        return torch.tensor(1.0, dtype=torch.float64)


def test_the_good_example_core_passes():
    check_core_contract(_GoodCore(INPUT, 5), INPUT)


@pytest.mark.parametrize("core_cls, rule", [
    (_FirstStepCore, "last_only"),
    (_ForgetfulCore, "returned state"),
    (_AttachedMatrixCore, "detached"),
    (_ForeignParameterCore, "parameters of the core"),
    (_NegativePenaltyCore, "non-negative"),
    (_ConstantPenaltyCore, "does not depend"),
])
def test_a_broken_core_fails_the_contract(core_cls, rule):
    with pytest.raises(AssertionError, match=rule):
        check_core_contract(core_cls(INPUT, 5), INPUT)


def test_a_core_without_the_required_methods_cannot_be_built_or_attached():
    class NoMatrix(RecurrentCore):
        def forward(self, x, state=None, last_only=False):
            return x, state

        def recurrent_parameters(self):
            return []

    with pytest.raises(TypeError, match="recurrent_matrix"):
        NoMatrix()
    model = LSTM(task=TASK, hidden_size=4)
    with pytest.raises(TypeError, match="must be a kruzoo.cores.RecurrentCore"):
        model.set_core(nn.LSTM(INPUT, 4, batch_first=True))


# -- a new model documents only its own arguments ----------------------------------------------
def test_a_new_model_gets_the_shared_args_in_its_help():
    from kruzoo.sequence_model import SHARED_ARGS_DOC, SequenceModel

    class Tiny(SequenceModel):
        def __init__(self, task: dict | None = None, hidden_size: int = 4, optimizer=torch.optim.Adam,
                     lr_scheduler=None):
            """Build it.

            Args:
                hidden_size: n.
            """
            super().__init__(task, optimizer, lr_scheduler)
            self.set_core(_GoodCore(self.task.input_size, hidden_size))

    import docstring_parser

    params = {p.arg_name: p.description for p in docstring_parser.parse(Tiny.__init__.__doc__).params}
    assert list(params) == ["hidden_size", "task", "optimizer", "lr_scheduler"]
    assert params["task"] == SHARED_ARGS_DOC["task"].replace("\n    ", "\n")
    check_core_contract(Tiny(task=TASK).core, INPUT)

    class Plain(SequenceModel):
        def __init__(self, task: dict | None = None):
            """Build it."""

    assert [p.arg_name for p in docstring_parser.parse(Plain.__init__.__doc__).params] == ["task"]
