"""A player's update on its own: a function of the player's state and the step's gradients."""

import pytest
import torch

from ppdgm.inference import DivergedError, NonFiniteLossError
from ppdgm.inference.ema import WeightAverage
from ppdgm.inference.engine.state import PlayerState, Position, reset_grads
from ppdgm.inference.engine.step import check_divergence, loss_values, update
from ppdgm.inference.players import Player


def _state(*values):
    params = [torch.nn.Parameter(torch.tensor(v)) for v in values]
    return PlayerState(Player("svi"), names=[f"p{i}" for i in range(len(params))], params=params,
                       optimizer=torch.optim.SGD(params, lr=0.5))


def test_a_loss_is_differentiated_and_stepped():
    state = _state(1.0, 2.0)
    a, b = state.params
    update(state, Position(), loss=(a * b) ** 2)  # d/da = 2ab^2 = 8, d/db = 2a^2b = 4
    assert a.item() == pytest.approx(1.0 - 0.5 * 8) and b.item() == pytest.approx(2.0 - 0.5 * 4)


def test_given_gradients_are_stepped_and_a_missing_one_leaves_its_parameter():
    state = _state(1.0, 2.0)
    update(state, Position(), grads=[torch.tensor(2.0), None])
    assert [p.item() for p in state.params] == [0.0, 2.0]


def test_a_non_finite_gradient_is_named_and_never_stepped():
    state = _state(1.0, 2.0)
    with pytest.raises(NonFiniteLossError, match=r"gradient of 'p1' became NaN or Inf at step 7 "
                                                 r"\(epoch 1, batch 2\) for player 'svi'; the "
                                                 r"parameters were not updated with it; kept here"):
        update(state, Position(epoch=1, batch=2, step=7),
               grads=[torch.tensor(1.0), torch.tensor(float("nan"))], kept="; kept here")
    assert [p.item() for p in state.params] == [1.0, 2.0]


def test_gradients_are_clipped_and_the_average_follows_the_step():
    state = _state(0.0)
    ema = WeightAverage(0.5)
    update(state, Position(), grads=[torch.tensor(10.0)], grad_clip=1.0, ema=ema)
    assert state.params[0].item() == pytest.approx(-0.5)  # the gradient clipped to norm 1
    assert ema.shadows["p0"].item() == pytest.approx(-0.5)  # the first update copies the weight


def test_reset_grads_zeroes_what_the_optimizer_has_stepped_as_svi_does():
    state = _state(1.0, 2.0)
    state.optimizer = torch.optim.Adam(state.params)  # an optimizer with state per parameter
    update(state, Position(), grads=[torch.tensor(1.0), None])
    reset_grads(state)
    assert state.params[0].grad.item() == 0.0 and state.params[1].grad is None


def test_divergence_is_measured_against_the_first_loss():
    state = _state(1.0)
    check_divergence(state, 5.0, Position(), factor=10.0, first_loss=2.0)
    with pytest.raises(DivergedError, match="more than 10 times its first"):
        check_divergence(state, 25.0, Position(), factor=10.0, first_loss=99.0)  # 2.0 is kept


def test_loss_values_take_a_scalar_or_several_and_refuse_the_rest():
    assert loss_values(torch.tensor(1.5), "elbo") == [1.5]
    assert loss_values((torch.tensor(1.0), 2), "rws") == [1.0, 2.0]
    with pytest.raises(TypeError, match="returned a loss of shape"):
        loss_values(torch.ones(2), "elbo")
