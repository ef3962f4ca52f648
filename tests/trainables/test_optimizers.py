"""The OPTIMIZERS registry: every hyper-parameter of a trial reaches the torch optimizer.

Each case builds a GANTrainer from a TrialConfig with non-default values, distinct for G
and D, and reads them back from ``trainer.opt_g`` / ``trainer.opt_d``. The cases cover
the registry exactly: a new optimizer without a case here fails the contract test.
"""

import pytest
import torch

from gansweep.trainables.config import TrialConfig
from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.optimizers import OPTIMIZERS

# Values no default has, and different for G and D, so a swap or a dropped value shows.
PER_NETWORK = dict(lr_g=0.0123, lr_d=0.0456, weight_decay_g=0.031, weight_decay_d=0.072)
SMALL = dict(width=8, batch_size=16, eval_samples=10, device="cpu")

# name -> (the trial's optimizer settings, torch class, what each param group must hold)
CASES = {
    "sgd": (
        dict(momentum=0.7, nesterov=True),
        torch.optim.SGD,
        dict(momentum=0.7, nesterov=True, dampening=0),
    ),
    "adam": (
        dict(beta1=0.3, beta2=0.88),
        torch.optim.Adam,
        dict(betas=(0.3, 0.88)),
    ),
    "rmsprop": (
        dict(rmsprop_alpha=0.77),
        torch.optim.RMSprop,
        dict(alpha=0.77, momentum=0, centered=False),
    ),
}


def test_every_registered_optimizer_has_a_case():
    assert set(CASES) == set(OPTIMIZERS)


def param_ids(params):
    return {id(p) for p in params}


@pytest.mark.parametrize("name", sorted(set(OPTIMIZERS) | set(CASES)))
def test_optimizer_hyperparameters_reach_torch(name):
    assert name in OPTIMIZERS, f"case {name!r} names no registered optimizer"
    assert name in CASES, f"optimizer {name!r} is registered but has no case in CASES"
    settings, cls, expected = CASES[name]
    trainer = GANTrainer(TrialConfig(optimizer=name, **PER_NETWORK, **settings, **SMALL))

    for opt, net, lr, weight_decay in [
        (trainer.opt_g, trainer.G, PER_NETWORK["lr_g"], PER_NETWORK["weight_decay_g"]),
        (trainer.opt_d, trainer.D, PER_NETWORK["lr_d"], PER_NETWORK["weight_decay_d"]),
    ]:
        assert type(opt) is cls  # exactly: e.g. AdamW is a subclass of Adam
        # Each optimizer updates its own network's parameters, all of them.
        assert param_ids(p for g in opt.param_groups for p in g["params"]) == param_ids(
            net.parameters()
        )
        want = dict(expected, lr=lr, weight_decay=weight_decay)
        for where in (opt.defaults, *opt.param_groups):
            got = {key: where[key] for key in want}
            assert got == want, f"{name}: {got} != {want}"  # passed through, not computed
        if cls is torch.optim.Adam:  # L2 added to the gradient (coupled), not AdamW's
            assert not opt.defaults.get("decoupled_weight_decay", False)


def test_sgd_without_momentum_is_plain_sgd():
    trainer = GANTrainer(TrialConfig(optimizer="sgd", **PER_NETWORK, **SMALL))
    for opt in (trainer.opt_g, trainer.opt_d):
        assert type(opt) is torch.optim.SGD
        assert opt.defaults["momentum"] == 0 and opt.defaults["nesterov"] is False
