"""Mixture metrics: the true distribution scores perfectly; collapse and noise do not."""

import math

import pytest
import torch

from gansweep.trainables.data import load_dataset
from gansweep.trainables.metrics import mixture_metrics, off_mode_probability


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_samples_of_the_true_distribution_capture_every_mode(name):
    data = load_dataset(name)
    samples, _ = data.sample(2500, torch.Generator().manual_seed(0))
    m = mixture_metrics(samples, data.modes, data.sigma)
    assert m["modes_captured"] == len(data.modes)
    assert m["high_quality"] == pytest.approx(1 - off_mode_probability(2), abs=0.01)
    assert m["reverse_kl"] == pytest.approx(0.0, abs=0.02)
    assert m["distance"] == pytest.approx(0.0, abs=0.02)


def test_off_mode_probability_is_the_chi_square_tail():
    assert off_mode_probability(2) == pytest.approx(math.exp(-4.5))


def test_collapse_to_one_mode():
    data = load_dataset("ring8")
    samples = data.modes[0] + 0.001 * torch.randn(2500, 2, generator=torch.Generator())
    m = mixture_metrics(samples, data.modes, data.sigma)
    assert m["modes_captured"] == 1 and m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(math.log(8))
    p_mode = (1 - off_mode_probability(2)) / 8
    assert m["distance"] == pytest.approx(-math.log(p_mode))


def test_samples_far_from_every_mode():
    data = load_dataset("ring8")
    m = mixture_metrics(torch.full((100, 2), 5.0), data.modes, data.sigma)
    assert m["modes_captured"] == 0 and m["high_quality"] == 0.0
    assert m["distance"] == pytest.approx(4.5)  # -log(p_off) = 9/2, the largest value


def test_non_finite_samples_count_as_off_mode():
    data = load_dataset("ring8")
    samples = data.modes.repeat(2, 1)
    samples[0] = float("nan")
    samples[1] = float("inf")
    m = mixture_metrics(samples, data.modes, data.sigma)
    assert m["high_quality"] == pytest.approx(14 / 16)
    assert m["modes_captured"] == 8
