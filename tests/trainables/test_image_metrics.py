"""Image metrics: the pure functions against closed forms and references, and the feature
net + evaluate_images on scikit-learn's digits (trained once for the whole file)."""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.testing import assert_close

from gansweep.trainables import feature_net as fn
from gansweep.trainables import image_metrics as im
from gansweep.trainables.data import ImageData, load_dataset

PRDC = ("precision", "recall", "density", "coverage")

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def digits_cache(tmp_path_factory):
    """Digits with its feature net trained once into a fresh cache folder.

    Yields (data, net, seconds the training took, the GANSWEEP_CACHE folder it went to).
    Empty in-memory caches, so the net is really trained here, not picked up from another
    test file. Later tests reuse it from memory whatever GANSWEEP_CACHE says by then.
    """
    cache = tmp_path_factory.mktemp("image_metrics_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANSWEEP_CACHE", str(cache))
        mp.setattr(fn, "_NETS", {})
        mp.setattr(fn, "_STATS", {})
        data = load_dataset("digits")
        start = time.perf_counter()
        net = fn.get_feature_net(data)
        seconds = time.perf_counter() - start
        fn.get_real_stats(data)
        yield data, net, seconds, cache


@pytest.fixture
def digits(digits_cache):
    return digits_cache[0]


@pytest.fixture(scope="session")
def unlabelled_digits(tmp_path_factory):
    """Digits without their labels: what a folder of images is. Its feature net is the
    rotation task's, trained once here into a fresh cache folder."""
    full = load_dataset("digits")
    data = ImageData("digits_unlabelled", full.train_x, None, full.test_x, None, 0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANSWEEP_CACHE", str(tmp_path_factory.mktemp("unlabelled_cache")))
        fn.get_real_stats(data)
        yield data


def _noise_images(n: int, shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=gen) * 2 - 1


# ------------------------------------------------------------------ Fréchet distance


def _random_spd(d: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(d, 2 * d, generator=gen, dtype=torch.float64)
    return a @ a.T / (2 * d) + 0.1 * torch.eye(d, dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_scipy_sqrtm(seed):
    gen = torch.Generator().manual_seed(seed)
    d = 24
    mu1 = torch.randn(d, generator=gen, dtype=torch.float64)
    mu2 = torch.randn(d, generator=gen, dtype=torch.float64)
    s1, s2 = _random_spd(d, gen), _random_spd(d, gen)
    covmean = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = (
        ((mu1 - mu2) ** 2).sum().item()
        + np.trace(s1.numpy())
        + np.trace(s2.numpy())
        - 2 * np.trace(covmean)
    )
    assert im.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("m1", "s1", "m2", "s2"), [(0, 1, 0, 1), (0, 1, 3, 1), (1, 0.5, -2, 2)])
def test_frechet_distance_of_1d_gaussians_is_the_closed_form(m1, s1, m2, s2):
    fd = im.frechet_distance(
        torch.tensor([m1]), torch.tensor([[s1**2]]), torch.tensor([m2]), torch.tensor([[s2**2]])
    )
    assert fd == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, abs=1e-12)


def test_frechet_distance_of_a_distribution_to_itself_is_zero():
    gen = torch.Generator().manual_seed(0)
    mu, sigma = torch.randn(16, generator=gen), _random_spd(16, gen)
    assert im.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------ classifier score


def test_classifier_score_of_uniform_predictions_is_one():
    assert im.classifier_score(torch.full((50, 10), 0.1)) == pytest.approx(1.0)


@pytest.mark.parametrize("k", [2, 10])
def test_classifier_score_of_confident_balanced_predictions_is_k(k):
    probs = torch.eye(k).repeat(7, 1)  # one-hot, 7 samples per class
    assert im.classifier_score(probs) == pytest.approx(float(k))


# ------------------------------------------------------------------ P/R and D/C


def _prdc_reference(real, fake, k):
    """Naeem et al.'s reference formulas on full distance matrices (float64)."""
    real, fake = real.double(), fake.double()
    d_rr, d_ff, d_rf = torch.cdist(real, real), torch.cdist(fake, fake), torch.cdist(real, fake)
    r_real = d_rr.kthvalue(k + 1, dim=1).values
    r_fake = d_ff.kthvalue(k + 1, dim=1).values
    inside = d_rf < r_real[:, None]
    return {
        "precision": inside.any(0).double().mean().item(),
        "recall": (d_rf < r_fake[None, :]).any(1).double().mean().item(),
        "density": inside.sum(0).double().mean().item() / k,
        "coverage": (d_rf.min(1).values < r_real).double().mean().item(),
    }


def test_prdc_match_the_reference_formulas_across_chunks(monkeypatch):
    monkeypatch.setattr(im, "_CHUNK", 37)  # many uneven chunks
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(300, 8, generator=gen)
    fake = 0.8 * torch.randn(250, 8, generator=gen) + 0.5
    precision, recall = im.precision_recall(real, fake, k=5)
    density, coverage = im.density_coverage(real, fake, k=5)
    got = {"precision": precision, "recall": recall, "density": density, "coverage": coverage}
    assert got == pytest.approx(_prdc_reference(real, fake, k=5), abs=1e-12)


def test_prdc_of_identical_sets_are_one():
    feats = torch.randn(400, 16, generator=torch.Generator().manual_seed(0))
    assert im.precision_recall(feats, feats.clone()) == pytest.approx((1.0, 1.0))
    assert im.density_coverage(feats, feats.clone()) == pytest.approx((1.0, 1.0))


def test_prdc_of_disjoint_far_apart_sets_are_zero():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(200, 16, generator=gen)
    fake = torch.randn(150, 16, generator=gen) + 100.0
    assert im.precision_recall(real, fake) == pytest.approx((0.0, 0.0))
    assert im.density_coverage(real, fake) == pytest.approx((0.0, 0.0))


def test_prdc_need_more_than_k_points():
    with pytest.raises(ValueError, match="more than 5 points"):
        im.precision_recall(torch.randn(5, 3), torch.randn(20, 3), k=5)


# ------------------------------------------------------------------ feature net


@pytest.mark.parametrize("size", [8, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_feature_net_shapes(size, channels):
    net = fn.FeatureNet(channels, size, num_classes=7)
    feats, logits = net.features_and_logits(torch.zeros(3, channels, size, size))
    assert feats.shape == (3, fn.FEATURE_DIM)
    assert logits.shape == (3, 7)


def test_feature_net_is_accurate_and_trains_quickly(digits_cache):
    data, net, seconds, _ = digits_cache
    print(f"feature net on digits: {seconds:.1f} s, test accuracy {net.test_accuracy.item():.4f}")
    assert net.test_accuracy.item() > 0.9
    assert seconds < 20


def test_feature_net_is_cached_on_disk_and_loaded_without_training(digits_cache, monkeypatch):
    data, net, _, cache = digits_cache
    monkeypatch.setenv("GANSWEEP_CACHE", str(cache))
    key = fn.cache_key(data)
    files = [p.name for p in fn.cache_dir().iterdir()]
    assert {f"{key}.pt", f"{key}.real.pt"} <= set(files)
    assert not [name for name in files if name.endswith(".tmp")]  # renamed into place

    def boom(_data):
        raise AssertionError("trained again instead of loading the cached net")

    monkeypatch.setattr(fn, "train_feature_net", boom)
    monkeypatch.setattr(fn, "_NETS", {})
    monkeypatch.setattr(fn, "_STATS", {})
    loaded = fn.get_feature_net(data)
    assert loaded is not net
    assert_close(loaded.state_dict(), net.state_dict(), rtol=0, atol=0)
    assert fn.get_feature_net(data) is loaded  # then from memory
    stats = fn.get_real_stats(data)
    assert stats.mu.dtype == stats.sigma.dtype == torch.float64
    assert stats.sigma.shape == (fn.FEATURE_DIM, fn.FEATURE_DIM)
    assert stats.feats.shape == (len(data.train_x), fn.FEATURE_DIM)
    assert fn.get_real_stats(data) is stats


def test_a_different_data_set_with_the_same_name_gets_its_own_net(digits):
    other = ImageData("digits", -digits.train_x, digits.train_y, digits.test_x, digits.test_y, 10)
    assert fn.cache_key(other) != fn.cache_key(digits)


def test_feature_net_leaves_the_global_random_state_alone(digits_cache, monkeypatch):
    data = digits_cache[0]
    small = ImageData("digits_small", data.train_x[:128], data.train_y[:128], data.test_x[:64],
                      data.test_y[:64], 10)  # fmt: skip
    monkeypatch.setattr(fn, "EPOCHS", 1)
    before = torch.get_rng_state()
    fn.get_feature_net(small)  # trains
    monkeypatch.setattr(fn, "_NETS", {})
    fn.get_feature_net(small)  # loads from disk
    assert torch.equal(torch.get_rng_state(), before)


def test_unlabelled_data_gets_a_rotation_net(unlabelled_digits, digits):
    """No labels: the net learns which quarter turn an image was given (4 outputs), is
    cached under its own key, and reports everything but the class-based metrics."""
    net = fn.get_feature_net(unlabelled_digits)
    assert fn.task(unlabelled_digits) == "rotation" and net.head.out_features == 4
    assert "-rotation-" in fn.cache_key(unlabelled_digits)
    assert net.test_accuracy.item() > 0.8  # a quarter is chance
    m = im.evaluate_images(unlabelled_digits.test_x, unlabelled_digits)
    assert set(m) == {*PRDC, "fd", "classifier_test_accuracy"}
    assert all(math.isfinite(v) for v in m.values())
    with pytest.raises(ValueError, match="ac_accuracy needs labelled data"):
        im.evaluate_images(digits.test_x, unlabelled_digits, digits.test_y)


# ------------------------------------------------------------------ evaluate_images


def test_real_vs_real_fd_is_near_zero_and_far_below_noise(digits):
    stats = fn.get_real_stats(digits)
    fd_real = im.evaluate_images(digits.test_x, digits)["fd"]
    fd_noise = im.evaluate_images(_noise_images(len(digits.test_x), digits.shape), digits)["fd"]
    print(f"FD digits train vs test: {fd_real:.3f}; vs uniform noise: {fd_noise:.3f}")
    assert fd_real < 0.05 * fd_noise
    # "Near zero" on the scale of the features' own spread (the FD of two independent
    # draws of one Gaussian would be 2 tr(sigma) if their covariance term vanished).
    assert fd_real < 0.15 * stats.sigma.trace().item()


def canonical_sets(data: ImageData) -> dict[str, torch.Tensor]:
    """Image sets of known quality, as many as the real test split holds: the test split
    itself, it with noise or blur, one test image repeated, uniform noise, flat grey."""
    real = data.test_x
    gen = torch.Generator().manual_seed(1)
    c = real.shape[1]
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(c, 1, 3, 3)
    blurred = torch.nn.functional.conv2d(
        torch.nn.functional.pad(real, (1, 1, 1, 1), mode="replicate"), kernel, groups=c
    )
    return {
        "real held-out": real,
        "real + noise": (real + 0.5 * torch.randn(real.shape, generator=gen)).clamp(-1, 1),
        "real blurred": blurred,
        "one real repeated": real[:1].expand_as(real).clone(),
        "uniform noise": _noise_images(len(real), data.shape),
        "constant grey": torch.zeros_like(real),
    }


@pytest.mark.parametrize("labels", ["classifier features", "rotation features (no labels)"])
def test_the_metrics_rank_canonical_image_sets(labels, request):
    """Against the real training split: held-out real images are best; noise or blur make
    them worse; one image repeated is precise but covers nothing; noise and flat grey are
    neither precise nor dense nor covering, and have the worst fd. With labels (the
    classifier's features) and without (the rotation task's)."""
    data = request.getfixturevalue(
        "digits" if labels.startswith("classifier") else "unlabelled_digits"
    )
    m = {name: im.evaluate_images(x, data) for name, x in canonical_sets(data).items()}
    for name, row in m.items():
        print(f"{name:<18}", "  ".join(f"{k} {row[k]:.3g}" for k in ("fd", *PRDC)))
    real, garbage = m["real held-out"], ("uniform noise", "constant grey")
    others = [name for name in m if name != "real held-out"]
    assert all(real["fd"] < m[n]["fd"] for n in others)
    for key in ("precision", "recall", "coverage"):
        assert real[key] > 0.9, key
    assert real["density"] == pytest.approx(1.0, abs=0.15)
    for name in ("real + noise", "real blurred"):
        assert m[name]["coverage"] < real["coverage"] - 0.1, name
        assert m[name]["density"] < real["density"] - 0.1, name
    one = m["one real repeated"]
    assert one["precision"] > 0.9 and one["recall"] < 0.05 and one["coverage"] < 0.05
    for name in garbage:
        for key in ("precision", "density", "coverage"):
            assert m[name][key] < 0.05, (name, key)
        assert all(m[name]["fd"] > m[n]["fd"] for n in m if n not in garbage), name


def test_an_untrained_generator_is_not_precise(digits):
    """30 steps of a DCGAN draw blobs: in the raw classifier features their precision
    read 0.89 (the issue that brought in the whitened space); measured 0.18 now."""
    from gansweep.trainables.engine import GANTrainer

    trainer = GANTrainer(
        dict(dataset="digits", architecture="dcgan", width=32, batch_size=64, steps=30,
             eval_every=30, eval_samples=360)
    )  # fmt: skip
    for _ in range(30):
        trainer.train_step()
    fakes, _ = trainer.generate(360)
    m = im.evaluate_images(fakes, digits)
    assert m["precision"] < 0.4 and m["coverage"] < 0.1 and m["density"] < 0.2


def test_real_test_images_score_like_real_data(digits):
    m = im.evaluate_images(digits.test_x, digits, digits.test_y)
    assert set(m) == {
        "fd",
        "classifier_score",
        "precision",
        "recall",
        "density",
        "coverage",
        "classifier_test_accuracy",
        "ac_accuracy",
    }
    assert all(isinstance(v, float) and math.isfinite(v) for v in m.values())
    # AC accuracy on real test images with their true labels is the test accuracy itself.
    assert m["ac_accuracy"] == pytest.approx(m["classifier_test_accuracy"], abs=1e-6)
    assert m["ac_accuracy"] > 0.9
    assert m["classifier_score"] > 8.0  # at most 10: confident and balanced
    for key in ("precision", "recall", "coverage"):
        assert m[key] > 0.9, key
    assert m["density"] == pytest.approx(1.0, abs=0.15)


def test_noise_scores_far_worse_than_real_images(digits):
    m = im.evaluate_images(_noise_images(400, digits.shape), digits, torch.zeros(400).long())
    assert m["recall"] < 0.2
    assert m["coverage"] < 0.2
    assert m["classifier_score"] < 8.0


def test_wrong_labels_give_a_low_ac_accuracy(digits):
    m = im.evaluate_images(digits.test_x, digits, (digits.test_y + 1) % 10)
    assert m["ac_accuracy"] < 0.1


def test_evaluate_images_is_deterministic(digits):
    fakes = digits.test_x[:200] + 0.1 * _noise_images(200, digits.shape)
    assert im.evaluate_images(fakes, digits) == im.evaluate_images(fakes, digits)


def test_non_finite_fakes_are_a_clear_error(digits):
    fakes = digits.test_x.clone()
    fakes[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="1 of 360 generated images"):
        im.evaluate_images(fakes, digits)


def test_wrongly_shaped_fakes_are_a_clear_error(digits):
    with pytest.raises(ValueError, match="shape"):
        im.evaluate_images(torch.zeros(10, 3, 8, 8), digits)
    with pytest.raises(ValueError, match="more than k=5"):
        im.evaluate_images(digits.test_x[:5], digits)


# ------------------------------------------------------------------ Inception FID/KID


def test_to_uint8_rgb():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    out = im.to_uint8_rgb(x)
    assert out.dtype == torch.uint8
    assert out.shape == (1, 3, 2, 2)
    assert_close(out[0, 2].flatten(), torch.tensor([0, 128, 255, 255], dtype=torch.uint8))


def test_missing_inception_weights_say_how_to_get_them(digits, tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError) as err:
        im.evaluate_images(digits.test_x, digits, inception_weights=str(missing))
    message = str(err.value)
    assert str(missing) in message
    assert "pt_inception-2015-12-05" in message
    assert im.INCEPTION_WEIGHTS_URL in message
    assert "never downloads" in message


def test_missing_torch_fidelity_names_the_extra(tmp_path, monkeypatch):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install 'gansweep\[fidelity\]'"):
        im.inception_fid_kid(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8), str(weights))


def test_torch_fidelity_gets_the_local_weights_and_uint8_rgb_images(digits, tmp_path, monkeypatch):
    torch_fidelity = pytest.importorskip("torch_fidelity")
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"")
    seen = {}

    def fake_calculate_metrics(**kwargs):
        seen.update(kwargs)
        return {torch_fidelity.KEY_METRIC_FID: 1.5, torch_fidelity.KEY_METRIC_KID_MEAN: 0.25}

    monkeypatch.setattr(torch_fidelity, "calculate_metrics", fake_calculate_metrics)
    m = im.evaluate_images(digits.test_x[:100], digits, inception_weights=str(weights))
    assert (m["fid_inception"], m["kid_inception"]) == (1.5, 0.25)
    assert seen["feature_extractor_weights_path"] == str(weights)
    assert seen["cache"] is False
    assert seen["kid_subset_size"] == 100
    for name in ("input1", "input2"):
        assert len(seen[name]) == 100
        assert seen[name][0].dtype == torch.uint8
        assert seen[name][0].shape == (3, 8, 8)


def test_inception_weights_are_checked_before_training(tmp_path, monkeypatch):
    """check_inception_weights (what the engine and the sweep run before a step) passes a
    file that torch-fidelity's InceptionV3 loads and refuses the rest, by name."""
    pytest.importorskip("torch_fidelity")
    from torch_fidelity import feature_extractor_inceptionv3 as tfi

    # A file of the right layout (random values): InceptionV3 built without its download.
    with monkeypatch.context() as patch:
        patch.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, s: None)
        model = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    good = tmp_path / "inception.pth"
    torch.save(model.state_dict(), good)
    im.check_inception_weights(str(good))  # no error

    text, foreign, pickled = tmp_path / "t.pth", tmp_path / "f.pth", tmp_path / "p.pth"
    text.write_text("not weights")
    torch.save({"fc.weight": torch.zeros(2, 2)}, foreign)
    torch.save({"fc.weight": time.perf_counter}, pickled)  # code, not tensors
    for path, message in [
        (tmp_path / "missing.pth", "Inception weights file not found"),
        (text, "is not a PyTorch weights file"),
        (foreign, "are not the InceptionV3 weights torch-fidelity uses"),
        (pickled, "is not a PyTorch weights file"),  # weights_only refuses it
    ]:
        with pytest.raises(im.InceptionWeightsError, match=message):
            im.check_inception_weights(str(path))
