"""Population Based Training as a sweep's scheduler (``--scheduler pbt``).

Ray Tune's PopulationBasedTraining refuses a search algorithm (it raises on a
SearchGenerator such as OptunaSearch): the population is its own search. So the split is
that Optuna proposes the initial population, once, up front (``study.ask`` with the
sweep's sampler), Tune runs it through a BasicVariantGenerator's ``points_to_evaluate``,
and PBT then does the rest: at every ``perturbation_interval`` steps (an evaluation
boundary) a trial in the bottom quantile restarts from the checkpoint of one in the top
quantile, with that trial's config and its continuous parameters perturbed
(``mutations``). At the end each Optuna trial is told its trial's last result, so the
study (and the report's importances) describe the population's starting points.

Only parameters the engine re-reads after a restore may change mid-run: the learning
rates (``GANTrainer.load_state_dict`` applies the configured ones over the saved
optimizer state, as the base its learning-rate schedule multiplies: a perturbed rate
keeps the schedule's shape and position, at the new scale) and the penalty weight (read
at every step). Everything else a trial keeps, or takes whole from the trial it exploits.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import optuna
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from gansweep.records.manifest import Manifest
from gansweep.records.study_store import open_study_storage
from gansweep.search_spaces import SearchSpace
from gansweep.trainables.config import TrialConfig

if TYPE_CHECKING:
    from gansweep.platform.options import SweepOptions

log = logging.getLogger(__name__)

SAFE_TO_PERTURB = ("lr_g", "lr_d", "penalty_weight")


def mutations(space: SearchSpace) -> dict[str, Any]:
    """The searched continuous params PBT may change mid-run, with their ranges. A
    conditional one (penalty_weight only with a penalty) is left out: in the configs
    that do not use it, perturbing it would change nothing."""
    out: dict[str, Any] = {}
    for p in space.params:
        if p.name in SAFE_TO_PERTURB and p.kind in ("uniform", "loguniform") and not p.when:
            low, high = float(p.low), float(p.high)  # type: ignore[arg-type]
            out[p.name] = tune.loguniform(low, high) if p.log else tune.uniform(low, high)
    return out


class StepPBT(PopulationBasedTraining):
    """PBT that leaves a trial alone at its last evaluation: exploiting there would hand
    it another trial's config and weights with no step left to train them, and its own
    result would be recorded under the other trial's config."""

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        if result.get("step", 0) >= trial.config.get("steps", math.inf):
            return TrialScheduler.CONTINUE  # it reported its last result; it ends now
        return super().on_trial_result(tune_controller, trial, result)


def scheduler(space: SearchSpace, interval: int) -> PopulationBasedTraining:
    """PBT on generator steps: a trial is considered for exploit/explore once every
    `interval` steps (the space's longest evaluation interval, so it falls on evaluations,
    where the trials report and checkpoint)."""
    return StepPBT(
        time_attr="step",
        perturbation_interval=interval,
        hyperparam_mutations=mutations(space),
        quantile_fraction=0.25,
        resample_probability=0.25,
    )


def initial_population(
    manifest: Manifest, space: SearchSpace, options: SweepOptions, sampler: Any
) -> list[dict[str, Any]]:
    """`num_samples` configs from the sweep's Optuna study (asked, not yet told). A
    resumed sweep reuses the ones asked before instead of asking again."""
    study = optuna.create_study(
        study_name=manifest.study_name,
        storage=open_study_storage(manifest, writer=True),
        sampler=sampler,
        direction="minimize" if options.mode == "min" else "maximize",
        load_if_exists=True,
    )
    for _ in range(options.num_samples - len(study.get_trials(deepcopy=False))):
        space.sample_params(study.ask())  # define-by-run: the sampler draws as it is asked
    asked = study.get_trials(deepcopy=False)[: options.num_samples]
    # Complete configs (defaults filled in): Tune takes a preset point only for keys its
    # param_space has, so every point must have the same keys.
    return [
        TrialConfig.from_dict({**space.fixed, **frozen.params}).model_dump() for frozen in asked
    ]


class TellOptuna(tune.Callback):
    """Tell each Optuna trial of the initial population its Tune trial's last result."""

    def __init__(self, manifest: Manifest, metric: str, population: list[dict[str, Any]]):
        self.manifest, self.metric = manifest, metric
        self.population = [dict(c) for c in population]
        self.numbers: dict[str, int] = {}  # Tune trial id -> Optuna trial number
        self.storage: optuna.storages.BaseStorage | None = None  # opened at the first tell

    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        # A trial starts with its point of the population (PBT changes it only later).
        for number, config in enumerate(self.population):
            if number not in self.numbers.values() and _same(config, trial.config):
                self.numbers[trial.trial_id] = number
                return

    def _tell(self, trial: Trial, value: float | None) -> None:
        number = self.numbers.get(trial.trial_id)
        if number is None:
            return  # started before a driver restart: the study keeps it running
        try:
            # One storage for every tell: a journal is read from its start once, not
            # at each tell (initial_population repaired it before the search began).
            self.storage = self.storage or open_study_storage(self.manifest)
            study = optuna.load_study(study_name=self.manifest.study_name, storage=self.storage)
            if value is None:
                study.tell(number, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(number, value)
        except Exception as err:  # bookkeeping must never stop the sweep
            log.warning("could not tell Optuna trial %d: %s", number, err)

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        value = (trial.last_result or {}).get(self.metric)
        self._tell(trial, None if value is None else float(value))

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._tell(trial, None)


def _same(config: dict[str, Any], other: dict[str, Any]) -> bool:
    return all(other.get(k) == v for k, v in config.items())


def search(
    manifest: Manifest, space: SearchSpace, options: SweepOptions, sampler: Any
) -> tuple[BasicVariantGenerator, TellOptuna, dict[str, Any]]:
    """The search algorithm that hands Tune the initial population, the callback that
    reports the results back to the study, and the Tuner's param_space (every key of the
    population, each point replacing all of it)."""
    population = initial_population(manifest, space, options, sampler)
    generator = BasicVariantGenerator(points_to_evaluate=[dict(c) for c in population])
    return generator, TellOptuna(manifest, options.metric, population), dict(population[0])
