"""Mixture metrics. The primary one (`distance`, the MMD to the true mixture) must see what
the benchmark is about: on canonical sample sets, the perfect sampler beats every
degraded one, quality and coverage are monotone, samples spread wider around their modes
lose, a dropped mode costs more than mass between modes, unbalanced modes lose, and
there is no plateau far from the modes. The PacGAN metrics (modes, high quality, reverse
KL) keep their meaning."""

import math

import numpy as np
import pytest
import torch

from gansweep.trainables.data import load_dataset
from gansweep.trainables.metrics import (
    METRICS,
    MMD_BANDWIDTHS,
    mixture_metrics,
    mixture_mmd,
    off_mode_probability,
    reported_metrics,
    worst_metrics,
)

N = 2500  # the PacGAN protocol's sample count
DRAWS = 3  # canonical sets are drawn a few times: the orderings must hold on average


def mixture(data, n, rng, weights=None, spread=1.0) -> np.ndarray:
    """n samples of the data's mixture; `spread` scales sigma around each mode."""
    modes = data.modes.numpy().astype(float)
    k = len(modes)
    p = np.full(k, 1 / k) if weights is None else np.asarray(weights) / np.sum(weights)
    noise = spread * data.sigma * rng.standard_normal((n, 2))
    return modes[rng.choice(k, n, p=p)] + noise


def canonical(name: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sample sets of N points, each degraded in one way (see the module docstring)."""
    data = load_dataset(name)
    modes, k, sigma = data.modes.numpy().astype(float), len(data.modes), data.sigma
    fewer = (5, 3, 1) if k == 8 else (16, 9, 1)
    box_low, box_high = modes.min(0) - 0.5, modes.max(0) + 0.5

    def on_mode(share):
        x = mixture(data, N, rng)
        off = int(round((1 - share) * N))
        x[:off] = rng.uniform(box_low, box_high, (off, 2))
        return x

    def at_distance(sigmas):  # every sample exactly this far from a random mode
        angle = rng.uniform(0, 2 * math.pi, N)
        ring = np.stack([np.cos(angle), np.sin(angle)], 1)
        return modes[rng.integers(0, k, N)] + sigmas * sigma * ring

    def between(share):  # all modes, and a share of the mass halfway between neighbours
        x = mixture(data, N, rng)
        m = int(share * N)
        start = rng.integers(0, k, m)
        if k == 8:
            neighbour = (start + 1) % k
        else:  # the next mode along the grid's x axis (wrapping within the row)
            neighbour = np.where(modes[start, 0] < modes[:, 0].max(), start + 5, start - 5)
        x[:m] = (modes[start] + modes[neighbour]) / 2 + sigma * rng.standard_normal((m, 2))
        return x

    heavy = np.ones(k)
    heavy[0] = k - 1  # one mode holds half the mass
    sets = {
        "perfect": mixture(data, N, rng),
        "95% on-mode": on_mode(0.95),
        "75% on-mode": on_mode(0.75),
        "unbalanced": mixture(data, N, rng, heavy),
        # All modes, balanced, but wider: 86.5% and 67.5% of the samples within 3 sigma.
        "1.5 sigma wide": mixture(data, N, rng, spread=1.5),
        "2 sigma wide": mixture(data, N, rng, spread=2.0),
        "quarter between modes": between(0.25),
        **{f"at {s} sigma": at_distance(s) for s in (10, 30, 100)},
    }
    for count in fewer:
        kept = np.zeros(k)
        kept[rng.choice(k, count, replace=False)] = 1
        sets[f"{count} modes"] = mixture(data, N, rng, kept)
    return sets


@pytest.fixture(scope="module", params=["ring8", "grid25"])
def distances(request) -> tuple[str, dict[str, float], float]:
    """(data set, mean distance of each canonical set over DRAWS draws, sampling noise:
    the sd of the perfect sampler's distance)."""
    data = load_dataset(request.param)
    rng = np.random.default_rng(0)
    totals: dict[str, list[float]] = {}
    for _ in range(DRAWS):
        for name, x in canonical(request.param, rng).items():
            value = mixture_metrics(torch.as_tensor(x), data)["distance"]
            totals.setdefault(name, []).append(value)
    noise = float(np.std(totals["perfect"], ddof=1))
    return request.param, {k: float(np.mean(v)) for k, v in totals.items()}, noise


def test_the_perfect_sampler_beats_every_degraded_one(distances):
    name, d, noise = distances
    for degraded, value in d.items():
        if degraded == "perfect":
            continue
        if degraded == "95% on-mode":  # a tie within sampling noise is acceptable
            assert d["perfect"] < value + 2 * noise, (degraded, d)
        else:
            assert d["perfect"] < value, (degraded, d)


def test_quality_is_monotone(distances):
    _, d, _ = distances
    assert d["perfect"] < d["75% on-mode"] and d["95% on-mode"] < d["75% on-mode"]


def test_samples_spread_wider_around_their_modes_lose(distances):
    """The high-quality share's scale: 1.5 sigma wide (86.5% within 3 sigma) must already
    lose to the true spread, beyond sampling noise (W1 cannot tell these apart)."""
    _, d, noise = distances
    assert d["perfect"] + 3 * noise < d["1.5 sigma wide"] < d["2 sigma wide"]


def test_coverage_is_monotone(distances):
    name, d, _ = distances
    fewer = ("5 modes", "3 modes", "1 modes") if name == "ring8" else ("16 modes", "9 modes",
                                                                       "1 modes")  # fmt: skip
    chain = [d["perfect"], *(d[f] for f in fewer)]
    assert chain == sorted(chain) and len(set(chain)) == len(chain), chain


def test_a_dropped_mode_costs_more_than_a_quarter_of_the_mass_between_modes(distances):
    """Mode collapse is the failure the benchmark is about: every mode with a quarter of
    the samples between modes beats a perfect sampler of fewer modes."""
    name, d, _ = distances
    fewer = "5 modes" if name == "ring8" else "16 modes"
    assert d["quarter between modes"] < d[fewer]


def test_unbalanced_modes_lose_to_balanced_ones(distances):
    _, d, _ = distances
    assert d["perfect"] < d["unbalanced"]


def test_no_plateau_far_from_the_modes(distances):
    """Samples 10 sigma off beat samples 30 sigma off, which beat 100 sigma: the metric
    keeps moving long before samples are good, so the first rung sees a signal."""
    _, d, _ = distances
    assert d["at 10 sigma"] < d["at 30 sigma"] < d["at 100 sigma"]


# ------------------------------------------------------------------- exact values


def test_the_mixture_terms_are_exact_for_samples_at_one_mode():
    """All N samples on a one-mode mixture's centre: every generated pair has kernel 1,
    and each mixture term has its closed form, so the MMD is known exactly."""
    mode, sigma = torch.tensor([[0.3, -0.2]]), 0.05
    samples = mode.repeat(100, 1)
    expected = 0.0
    for b in MMD_BANDWIDTHS:
        h2, s2 = (b * sigma) ** 2, sigma**2
        expected += 1 - 2 * h2 / (h2 + s2) + h2 / (h2 + 2 * s2)
    assert mixture_mmd(samples, mode, sigma) == pytest.approx(expected, rel=1e-6)


def test_the_closed_form_matches_sampling_the_mixture():
    """The same MMD with the mixture's terms estimated from a large sample of it instead:
    the closed form is what sampling converges to."""
    data = load_dataset("ring8")
    rng = np.random.default_rng(1)
    x = torch.as_tensor(mixture(data, 600, rng, spread=2.0))
    y = torch.as_tensor(mixture(data, 6000, rng))
    sampled = 0.0
    for b in MMD_BANDWIDTHS:
        g = -0.5 / (b * data.sigma) ** 2
        kxx = torch.exp(torch.pdist(x).square() * g).mean()
        kyy = torch.exp(torch.pdist(y).square() * g).mean()
        kxy = torch.exp(torch.cdist(x, y).square() * g).mean()
        sampled += float(kxx + kyy - 2 * kxy)
    exact = mixture_mmd(x, data.modes, data.sigma)
    assert exact == pytest.approx(sampled, abs=0.002)
    assert exact > 0.01  # 2 sigma wide is far from a perfect match


def test_float32_and_the_clamped_exponent_keep_float64_values():
    """The generated pairs' kernels are computed in float32 with exponents clamped at -80
    (speed); against the plain float64 sum on ring8 samples, where most pairs at the
    narrow bandwidths are far below e^-80, the MMD agrees to 1e-6."""
    data = load_dataset("ring8")
    x = torch.as_tensor(mixture(data, 2500, np.random.default_rng(3), spread=1.5))
    within = torch.pdist(x.double()).square()
    assert float((within * (-0.5 / data.sigma**2)).lt(-80).double().mean()) > 0.5
    to_modes, between = torch.cdist(x, data.modes.double()).square(), torch.cdist(
        data.modes.double(), data.modes.double()).square()  # fmt: skip
    reference, s2 = 0.0, data.sigma**2
    for b in MMD_BANDWIDTHS:
        h2 = (b * data.sigma) ** 2
        reference += float(
            torch.exp(-within / (2 * h2)).mean()
            - 2 * (h2 / (h2 + s2)) * torch.exp(-to_modes / (2 * (h2 + s2))).mean()
            + (h2 / (h2 + 2 * s2)) * torch.exp(-between / (2 * (h2 + 2 * s2))).mean()
        )
    assert mixture_mmd(x, data.modes, data.sigma) == pytest.approx(reference, rel=1e-6)


def test_collapse_to_one_mode_is_far_worse_than_any_spread():
    data = load_dataset("ring8")
    samples = data.modes[0].repeat(N, 1)
    m = mixture_metrics(samples, data)
    wide = mixture_metrics(torch.as_tensor(mixture(data, N, np.random.default_rng(0), spread=3)),
                           data)  # fmt: skip
    assert m["distance"] == m["mmd"] > 10 * wide["distance"] > 0
    assert m["modes_captured"] == 1 and m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(math.log(8))


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_samples_of_the_true_distribution_capture_every_mode(name):
    data = load_dataset(name)
    samples, _ = data.sample(N, torch.Generator().manual_seed(0))
    m = mixture_metrics(samples, data)
    assert m["modes_captured"] == len(data.modes)
    assert m["high_quality"] == pytest.approx(1 - off_mode_probability(2), abs=0.01)
    assert m["reverse_kl"] == pytest.approx(0.0, abs=0.02)
    assert m["distance"] == pytest.approx(0.0, abs=0.002)  # unbiased: 0 on average


def test_off_mode_probability_is_the_chi_square_tail():
    assert off_mode_probability(2) == pytest.approx(math.exp(-4.5))


def test_non_finite_samples_count_as_off_mode():
    data = load_dataset("ring8")
    samples = data.modes.repeat(2, 1)
    samples[0] = float("nan")
    samples[1] = float("inf")
    m = mixture_metrics(samples, data)
    assert m["high_quality"] == pytest.approx(14 / 16)
    assert m["modes_captured"] == 8


# --------------------------------------------------------------- the registry


def test_every_mixture_metric_is_registered_with_its_direction():
    data = load_dataset("ring8")
    reported = mixture_metrics(data.modes.repeat(10, 1), data)
    assert set(reported) == set(reported_metrics("vector", False, False))
    assert {METRICS[n].mode for n in ("distance", "mmd", "reverse_kl")} == {"min"}
    assert {METRICS[n].mode for n in ("modes_captured", "high_quality")} == {"max"}


def test_worst_values_are_worse_than_any_real_one():
    worst = worst_metrics("vector", False, False)
    assert worst == {"distance": 1e6, "mmd": 1e6, "modes_captured": 0.0, "high_quality": 0.0,
                     "reverse_kl": 1e6}  # fmt: skip
    images = worst_metrics("image", conditional=True, inception=False)
    assert "ac_accuracy" in images and "fid_inception" not in images
    assert "classifier_score" in images
    unlabelled = worst_metrics("image", conditional=False, inception=False, labelled=False)
    assert "classifier_score" not in unlabelled and {"fd", "precision"} <= unlabelled.keys()


def test_what_image_trials_report_is_what_the_registry_says(tmp_path, monkeypatch):
    """An evaluation reports exactly reported_metrics(...), labelled or not: what
    --metric is checked against and what a diverged trial reports."""
    from gansweep.trainables.data import ImageData
    from gansweep.trainables.image_metrics import evaluate_images

    monkeypatch.setenv("GANSWEEP_CACHE", str(tmp_path))
    full = load_dataset("digits")
    small = ImageData("digits", full.train_x[:300], full.train_y[:300], full.test_x[:60],
                      full.test_y[:60], 10)  # fmt: skip
    unlabelled = ImageData("folder", small.train_x, None, small.test_x, None, 0)
    for data in (small, unlabelled):
        reported = evaluate_images(small.test_x, data)
        expected = reported_metrics("image", False, False, data.labelled)
        assert set(reported) == set(expected) - {"distance"} | {"classifier_test_accuracy"}


def test_no_metric_shares_a_config_fields_name():
    """A landscape row and a run's records hold a trial's config and its metrics side by
    side under their names (benchmarks/landscape/record.py merges them into one row): a
    metric named like a field would overwrite it, and a retrain of the row would train
    another config. So the learning rates in force are lr_g_now, lr_d_now."""
    from gansweep.trainables.config import TrialConfig
    from gansweep.trainables.metrics import NOT_TARGETS, TRAIN_CPU_SECONDS, TRAIN_SECONDS

    reported = {*METRICS, *NOT_TARGETS, TRAIN_SECONDS, TRAIN_CPU_SECONDS}
    assert not reported & set(TrialConfig.model_fields)
    assert {"lr_g_now", "lr_d_now"} <= set(NOT_TARGETS)  # recorded, never ranked
