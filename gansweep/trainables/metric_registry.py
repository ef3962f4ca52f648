"""The registry of every metric a trial reports: its name, which way is better, which
data reports it, and what a diverged trial reports instead. Plain data, no torch: the
records, the search spaces and the platform read it without loading the evaluators
(metrics.py, image_metrics.py), and so does a trainable that replays recorded curves.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIMARY_METRIC = "distance"
# A diverged run reports this for every metric where lower is better, and 0 where higher
# is better: finite (searchers need a number) and worse than any real value.
DIVERGED_DISTANCE = 1e6


@dataclass(frozen=True)
class MetricSpec:
    """A metric that trials report: which way is better, and for which data."""

    mode: str  # "min" or "max"
    kinds: tuple[str, ...]  # the data kinds whose trials report it
    description: str
    # What it needs besides the kind: a TrialConfig field that must be set (conditional,
    # inception_weights) or "labels" (a data set with classes).
    needs: str = ""

    @property
    def worst(self) -> float:
        """What a diverged trial reports."""
        return DIVERGED_DISTANCE if self.mode == "min" else 0.0


MIXTURE, IMAGE = ("vector",), ("image",)
METRICS: dict[str, MetricSpec] = {
    "distance": MetricSpec("min", (*MIXTURE, *IMAGE), "the primary metric: mmd or fd"),
    "mmd": MetricSpec("min", MIXTURE, "squared MMD to the true mixture (multi-scale kernel)"),
    "modes_captured": MetricSpec("max", MIXTURE, "modes with a high-quality sample"),
    "high_quality": MetricSpec("max", MIXTURE, "share of samples within 3 sigma of a mode"),
    "reverse_kl": MetricSpec("min", MIXTURE, "KL(mode histogram || uniform), PacGAN"),
    "fd": MetricSpec("min", IMAGE, "Fréchet distance in the data set's classifier features"),
    "classifier_score": MetricSpec(
        "max", IMAGE, "classifier score (Inception score's twin)", "labels"
    ),
    "precision": MetricSpec("max", IMAGE, "share of fakes on the real manifold"),
    "recall": MetricSpec("max", IMAGE, "share of reals on the fake manifold"),
    "density": MetricSpec("max", IMAGE, "density (Naeem et al. 2020)"),
    "coverage": MetricSpec("max", IMAGE, "coverage (Naeem et al. 2020)"),
    "ac_accuracy": MetricSpec("max", IMAGE, "fakes classified as their class", "conditional"),
    "fid_inception": MetricSpec("min", IMAGE, "Inception FID", "inception_weights"),
    "kid_inception": MetricSpec("min", IMAGE, "Inception KID", "inception_weights"),
}
# What a trial's training has cost so far, reported with every evaluation (by the Tune
# trainable, across restores): wall seconds of its training loop (steps and
# evaluations; x its CPUs = the core-seconds a search pays) and its process's CPU seconds.
TRAIN_SECONDS, TRAIN_CPU_SECONDS = "train_seconds", "train_cpu_seconds"
# The learning rates G and D train with at each evaluation (the base rates lr_g and
# lr_d times the schedule's factor), so a schedule, and PBT's changes to the base rates,
# show as curves. Not named lr_g and lr_d: no metric may share a TrialConfig field's
# name, since a landscape row holds both under their names (benchmarks/landscape).
LR_G_NOW, LR_D_NOW = "lr_g_now", "lr_d_now"
# Reported too, but they rank nothing: a loss says little about sample quality, a
# learning rate is a setting.
NOT_TARGETS = (
    "step", "loss_d", "loss_g", "diverged", "classifier_test_accuracy",
    TRAIN_SECONDS, TRAIN_CPU_SECONDS, LR_G_NOW, LR_D_NOW,
)  # fmt: skip


def reported_metrics(
    kind: str, conditional: bool, inception: bool, labelled: bool = True
) -> dict[str, MetricSpec]:
    """The metrics trials of this kind of data report (what --metric may name)."""
    have = {"": True, "conditional": conditional, "inception_weights": inception}
    have["labels"] = labelled
    return {n: s for n, s in METRICS.items() if kind in s.kinds and have[s.needs]}


def worst_metrics(
    kind: str, conditional: bool, inception: bool, labelled: bool = True
) -> dict[str, float]:
    """Every metric at its worst: what a diverged trial reports, so that any --metric
    has a value in every result (Tune checks that the metric is there)."""
    reported = reported_metrics(kind, conditional, inception, labelled)
    return {n: s.worst for n, s in reported.items()}
