"""The OPTIMIZERS registry: one optimizer per network, each with its own learning rate.

Separate learning rates for G and D are the two time-scale update rule (TTUR, Heusel
2017). ``weight_decay`` is the classic L2 penalty added to the gradient (PyTorch's
coupled form), which is what "L2 regularization" means in the GAN studies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class OptimizerSettings:
    """The hyper-parameters the optimizers read; each optimizer ignores the others."""

    lr: float
    weight_decay: float = 0.0
    beta1: float = 0.5
    beta2: float = 0.999
    momentum: float = 0.0
    nesterov: bool = False
    rmsprop_alpha: float = 0.99


def sgd(params: Iterable[nn.Parameter], s: OptimizerSettings) -> torch.optim.Optimizer:
    # torch rejects nesterov without momentum; the config validator reports it earlier.
    return torch.optim.SGD(
        params, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay
    )


def adam(params: Iterable[nn.Parameter], s: OptimizerSettings) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=s.lr, betas=(s.beta1, s.beta2), weight_decay=s.weight_decay)


def rmsprop(params: Iterable[nn.Parameter], s: OptimizerSettings) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=s.lr, alpha=s.rmsprop_alpha, weight_decay=s.weight_decay)


OPTIMIZERS: dict[str, Callable[[Iterable[nn.Parameter], OptimizerSettings], torch.optim.Optimizer]]
OPTIMIZERS = {"sgd": sgd, "adam": adam, "rmsprop": rmsprop}
