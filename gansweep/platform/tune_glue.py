"""The Ray Tune glue of a sweep: the Optuna searcher that resumes cleanly, the searcher
of the replication, and the Tuners themselves (the search, and the replication of its top
configs on fresh seeds). The samplers and schedulers they use are chosen from their
registries (samplers.py, schedulers.py); the driver-side callbacks are in
tune_callbacks.py."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import ray
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, Searcher
from ray.tune.search.optuna import OptunaSearch

from gansweep.platform import backfill
from gansweep.platform.samplers import SAMPLERS
from gansweep.platform.schedulers import SCHEDULERS
from gansweep.platform.trainable_registry import load_trainable
from gansweep.platform.trial import split_config, trial_run_name
from gansweep.platform.tune_callbacks import CloseTrialRuns, json_results_only
from gansweep.platform.tune_mends import mend_tune
from gansweep.platform.warm_start import WarmStart, enqueue
from gansweep.profiling import CallLog
from gansweep.records.manifest import REPLICAS_DIR, Manifest
from gansweep.records.study_store import open_study_storage
from gansweep.search_spaces import SearchSpace

if TYPE_CHECKING:
    from gansweep.platform.options import SweepOptions

log = logging.getLogger(__name__)


def fit(manifest: Manifest, tuner: tune.Tuner) -> None:
    """Run a Tuner. Ctrl-C, or anything else that stops it, leaves the sweep marked
    interrupted (for `gansweep resume`), never running or, worse, finished."""
    # Tune's own Ctrl-C handler ends fit() as if the experiment were done, and the sweep
    # would go on to replicate and finalize a search that never finished: let it raise.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    json_results_only(tuner)
    mend_tune()  # every Tune experiment of a sweep runs here
    try:
        tuner.fit()
    except BaseException:
        mark_interrupted(manifest)
        raise


def mark_interrupted(manifest: Manifest) -> None:
    manifest.status = "interrupted"
    if manifest.replication is not None and manifest.replication.status != "finished":
        manifest.replication.status = "interrupted"
    manifest.save()


def init_ray(address: str | None) -> None:
    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING, include_dashboard=False)


class ResumableOptunaSearch(OptunaSearch):
    """OptunaSearch whose restore reconciles its saved state with the study.

    Tune saves the searcher with its experiment state, every 10 s or more, while the study
    (records/study_store.py) is always current; after the driver dies the two disagree:
    - a trial the study saw finish after the last save is resumed by Tune (from an older
      checkpoint): it counts as completed, so its results are not reported again (Optuna
      refuses to update a finished trial, and the resumed sweep would end with an error);
    - a trial asked for after the last save is unknown to the restored Tune experiment,
      which asks for a new one in its place: nothing would ever finish it, so it goes
      back to the study's queue (WAITING), and the next new Tune trial is that Optuna
      trial, run again under its own number. A driver killed while the sampler was
      still proposing leaves a trial with only some of its params; the next ask keeps
      those and samples the rest. A killed driver then costs no proposal and leaves no
      FAIL trial behind: under the grid sampler every combination still runs once (a
      FAIL trial with some params, or a copy of a lost one, would be counted as
      visited, or break Optuna's grid tree), and a sweep's set of configs does not
      depend on when its driver died.

    This reads OptunaSearch's private ``_ot_study``, ``_ot_trials`` and
    ``_completed_trials``; pyproject.toml bounds ray to the versions tested, and
    tests/platform/test_tune_glue.py fails loudly if those attributes change.
    """

    def __init__(
        self,
        *args: Any,
        stopped_as_pruned: bool = False,
        calls: CallLog | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.stopped_as_pruned = stopped_as_pruned
        # Each suggest's cost, where GANSWEEP_PROFILE_CALLS asks (profiling.CallLog).
        self.calls = calls or CallLog(None)

    def suggest(self, trial_id: str) -> dict | None:
        with self.calls.call("suggest"):
            return super().suggest(trial_id)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """With stopped_as_pruned, a trial the scheduler stopped early is told to Optuna
        as PRUNED (its value at every rung was reported with on_trial_result), not as
        COMPLETE at its early value: TPE then ranks it after every trial that ran its
        full budget, by how far it got and its value there (as BOHB compares trials at
        equal budget), instead of among them."""
        if self.stopped_as_pruned and not error and result and _stopped_early(result):
            if trial_id not in self._completed_trials:
                study = self._ot_study
                assert isinstance(study, optuna.Study), "OptunaSearch set its study up"
                trial = self._ot_trials[trial_id]
                # Tune does not pass the result that stopped the trial to on_trial_result:
                # report its value here, so TPE knows how far the trial got and where.
                trial.report(result[self.metric], result["training_iteration"])
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result, error)

    def restore(self, checkpoint_path: str) -> None:
        calls = self.calls  # this driver's, not the saved one's
        super().restore(checkpoint_path)
        self.calls = calls
        study = self._ot_study
        assert isinstance(study, optuna.Study), "OptunaSearch sets its study up on restore"
        finished = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        known = set()
        for trial_id, ot_trial in self._ot_trials.items():
            known.add(ot_trial.number)
            if ot_trial.number in finished:
                self._completed_trials.add(trial_id)
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for trial in running:
            if trial.number not in known:
                log.warning(
                    "Optuna trial %d was lost with the driver: it goes back to the queue, "
                    "and the next new trial runs it",
                    trial.number,
                )
                # Study has no public "requeue": its storage's state setter allows
                # RUNNING -> WAITING, and ask() pops WAITING trials first.
                storage = study._storage
                lost = trial.user_attrs.get(LOST_TRIAL_ATTR, 0) + 1
                storage.set_trial_user_attr(trial._trial_id, LOST_TRIAL_ATTR, lost)
                storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.WAITING)


# On an Optuna trial that went back to the queue: how many drivers it was lost with.
LOST_TRIAL_ATTR = "gansweep.lost_with_driver"


def _stopped_early(result: dict) -> bool:
    """A last result short of its trial's planned steps, and not diverged: the scheduler
    stopped it. Tune hands searchers the result flattened, its trial's config included
    as config/<field>."""
    config = {k[len("config/") :]: v for k, v in result.items() if k.startswith("config/")}
    planned = split_config(config)[0].steps
    return result.get("step", 0) < planned and not result.get("diverged")


class FixedConfigs(Searcher):
    """A Tune searcher that proposes `configs` in order, one trial each, then finishes.

    Unlike a BasicVariantGenerator it is a Searcher, so Tune honours
    max_concurrent_trials with it; it saves how far it got with the experiment, so a
    resumed replication does not start a config twice.
    """

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.configs = [dict(c) for c in configs]
        self.given = 0

    # Searcher.FINISHED is a string, which Ray's own annotation of suggest leaves out.
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        if self.given >= len(self.configs):
            return Searcher.FINISHED
        self.given += 1
        return dict(self.configs[self.given - 1])

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        pass  # nothing to learn: every config is run once, whatever it gives

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps(self.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(json.loads(Path(checkpoint_path).read_text()))

    def get_state(self) -> dict[str, Any]:
        return {"configs": self.configs, "given": self.given}

    def set_state(self, state: dict[str, Any]) -> None:
        self.configs, self.given = state["configs"], state["given"]


# A trial's process is kept for the next trial: no new Ray actor, no second import of
# torch and MLflow, the MLflow store already open. ASHA's short trials paid a fresh actor
# each. Nothing of a trial outlives it in the process (train_gan builds everything from
# its config; tests/platform/test_tune_glue.py checks a reused actor's second trial is
# bit-identical to a fresh one).
REUSE_ACTORS = True
# Except where a scheduler's registry entry says otherwise (HyperBand: schedulers.py).


def _trainable(manifest: Manifest, options: SweepOptions) -> Any:
    function = load_trainable(options.trainable)  # sweep_input.prepare checked the name
    return tune.with_resources(
        tune.with_parameters(function, context=manifest.records),
        {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial},
    )


def _run_config(
    manifest: Manifest, name: str, storage: Path, options: SweepOptions, checkpoints_kept: int
) -> tune.RunConfig:
    return tune.RunConfig(
        name=name,
        storage_path=str(storage),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=checkpoints_kept),
        failure_config=tune.FailureConfig(max_failures=options.max_failures),
        callbacks=[CloseTrialRuns(manifest)],  # and Tune's JSON logger: see fit()
        verbose=1,
    )


def _name_of(trial: Trial) -> str:
    return trial_run_name(trial.config, trial.trial_id)


# Whether Optuna hears of a trial stopped early as PRUNED (see ResumableOptunaSearch).
STOPPED_AS_PRUNED = False


def optuna_searcher(
    space: SearchSpace,
    options: SweepOptions,
    study_name: str | None = None,
    storage: optuna.storages.BaseStorage | None = None,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    stopped_as_pruned: bool = STOPPED_AS_PRUNED,
    calls: CallLog | None = None,
    warm_start: list[WarmStart] | None = None,
) -> ResumableOptunaSearch:
    """The search's Optuna searcher (its study in `storage`; None: in memory, as the
    search benchmark's simulated sweeps use it). `sampler` and `stopped_as_pruned` are
    for that benchmark's variants; a sweep takes the defaults. `calls`: where each
    suggest's cost goes (the sweep folder's, when profiling asks for it). `warm_start`:
    configs a new study proposes first (warm_start.py); a resumed one has them already."""
    searcher = ResumableOptunaSearch(
        stopped_as_pruned=stopped_as_pruned,
        calls=calls,
        space=space.define,
        metric=options.metric,
        mode=options.mode,
        sampler=sampler or SAMPLERS[options.sampler].build(options.seed, options.num_samples),
        study_name=study_name,
        storage=storage,
    )
    # Named, so optuna-dashboard shows the metric rather than "Objective 0".
    study = searcher._ot_study
    assert isinstance(study, optuna.Study), "OptunaSearch sets its study up from a space"
    with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and still there
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([options.metric])
    enqueue(study, warm_start or [])
    return searcher


def build_tuner(
    manifest: Manifest,
    space: SearchSpace,
    options: SweepOptions,
    warm_start: list[WarmStart] | None = None,
) -> tuple[Any, tune.Tuner]:
    """(trainable, Tuner) of the search: Optuna proposes, the scheduler stops early (or,
    for a scheduler with its own population, such as PBT, Optuna proposes the first
    population and the scheduler evolves it: see pbt.py). Where the scheduler's entry
    allows it, the replicas of the top configs join the experiment as soon as their
    configs are certain (see backfill.py). `warm_start`: see optuna_searcher."""
    trainable = _trainable(manifest, options)
    spec = SCHEDULERS[options.scheduler]
    sampler = SAMPLERS[options.sampler].build(options.seed, options.num_samples)
    extra: list[tune.Callback] = []
    param_space: dict[str, Any] | None = None  # OptunaSearch's define-by-run needs none
    searcher: Searcher | BasicVariantGenerator
    scheduler: TrialScheduler = spec.build(space, options)
    num_samples = options.num_samples
    if spec.population is not None:  # Optuna proposes the first population only
        searcher, extra, param_space = spec.population(manifest, space, options, sampler)
    else:
        study = open_study_storage(manifest, writer=True)
        calls = CallLog(manifest.sweep_dir)
        searcher = optuna_searcher(
            space,
            options,
            manifest.study_name,
            study,
            sampler=sampler,
            calls=calls,
            warm_start=warm_start,
        )
        if backfill.applies(options.scheduler, options.replicate_top, options.time_budget, space):
            seeds = backfill.replica_seeds(space, options.seeds)
            searcher = backfill.SearchThenReplicas(
                searcher, num_samples, manifest, options.replicate_top, seeds
            )
            num_samples += options.replicate_top * options.seeds
    tune_config = tune.TuneConfig(
        metric=options.metric,
        mode=options.mode,
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=num_samples,
        max_concurrent_trials=options.max_concurrent,
        time_budget_s=options.time_budget,
        reuse_actors=REUSE_ACTORS and spec.reuse_actors,
        trial_name_creator=_name_of,
        trial_dirname_creator=_name_of,
    )
    storage = Path(manifest.sweep_dir).parent
    run_config = _run_config(manifest, manifest.name, storage, options, spec.checkpoints_kept)
    run_config.callbacks = [*(run_config.callbacks or []), *extra]
    tuner = tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
    )
    return trainable, tuner


def build_replica_tuner(
    manifest: Manifest, configs: list[dict[str, Any]], options: SweepOptions
) -> tuple[Any, tune.Tuner]:
    """(trainable, Tuner) that trains each of `configs` (complete Tune configs) once, to
    its full budget: no model of the results, no early stopping."""
    trainable = _trainable(manifest, options)
    tune_config = tune.TuneConfig(
        search_alg=FixedConfigs(configs),
        scheduler=FIFOScheduler(),
        num_samples=len(configs),
        max_concurrent_trials=options.max_concurrent,
        reuse_actors=REUSE_ACTORS,
        trial_name_creator=_name_of,
        trial_dirname_creator=_name_of,
    )
    kept = SCHEDULERS["fifo"].checkpoints_kept  # the replication runs as FIFO does
    run_config = _run_config(manifest, REPLICAS_DIR, Path(manifest.sweep_dir), options, kept)
    return trainable, tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)
