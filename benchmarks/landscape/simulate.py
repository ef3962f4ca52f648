"""Simulated sweeps over a recorded landscape: the platform's own searcher, scheduler and
ranking, driven on a simulated clock, so a search method can be run on 50+ sampler seeds
in minutes.

A real replay sweep (`--trainable benchmarks/landscape/replay.py:replay`) pays Ray Tune's
fixed cost per trial, seconds of it, which makes thousands of sweeps too slow here. This
is what tabular HPO benchmarks do instead (HPOBench, syne-tune's simulated backend): a
small stand-in for Tune's controller that does what Tune does with its searcher and its
scheduler, call for call, while each trial's results arrive at the times the table
recorded:
- the searcher is the platform's (tune_glue.optuna_searcher: ResumableOptunaSearch over
  the space's define-by-run, the SAMPLERS entry), its study in memory;
- the scheduler is the platform's (schedulers.SCHEDULERS, budget from the space);
- like Tune with max_concurrent_trials, at most `concurrent` trials are live (running or
  paused); a free slot resumes a trial the scheduler chooses, else asks the searcher;
- a trial's result k arrives when it has trained the table's CPU seconds to evaluation
  k (its seed chosen from its trial id as the replay trainable chooses it);
- after each result, the running champion is the first trial of records.ranking's
  order over what has been observed (the rule every reader of a real sweep uses).

A simulated sweep returns its trace: after each result, the core-seconds trained so far
(1 core per trial) and the champion's config; and the total.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher
from ray.tune.utils import flatten_dict
from replay import Landscape

from gansweep.platform.schedulers import SCHEDULERS
from gansweep.platform.sweep_input import SweepOptions
from gansweep.platform.tune_glue import optuna_searcher
from gansweep.records import ranking
from gansweep.search_spaces import SearchSpace
from gansweep.trainables.metric_registry import TRAIN_CPU_SECONDS

# A trial's clock and its cost: the CPU seconds its process spent training (1 thread, so
# core-seconds). Not the wall seconds: the recording shared its 2 cores with other work at
# times, which stretched some trials' wall time but not the compute they used.
COST = TRAIN_CPU_SECONDS


@dataclass(eq=False)  # hashed by identity, as Ray's schedulers key their dicts by trial
class SimTrial:
    """What a scheduler reads of a Tune trial, plus its recorded curve."""

    trial_id: str
    config: dict[str, Any]
    curve: pd.DataFrame  # the replayed seed's evaluations, in step order
    status: str = Trial.PENDING
    is_saving: bool = False
    order: int = 0  # start order: the ranking's last tie-breaker
    results: list[dict[str, float]] = field(default_factory=list)
    trained: float = 0.0  # seconds trained up to its last result
    resumed_at: float = 0.0  # simulated time it (re)started running

    def __str__(self) -> str:
        return self.trial_id


@dataclass
class Trace:
    """One simulated sweep: after each result, the core-seconds so far and the champion's
    config id (Landscape.config_id; -1 while none is ranked)."""

    costs: list[float]
    champions: list[int]
    total_cost: float
    trials: int
    trials_run: list[SimTrial]  # in the order they were suggested


class Controller:
    """Tune's controller as its searcher and scheduler see it (see the module docstring)."""

    def __init__(
        self,
        landscape: Landscape,
        space: SearchSpace,
        options: SweepOptions,
        searcher: Searcher | None = None,
        scheduler: TrialScheduler | None = None,
    ) -> None:
        """searcher, scheduler: a variant to measure (default: the platform's own)."""
        self.landscape, self.space, self.options = landscape, space, options
        self.searcher = searcher or optuna_searcher(space, options)
        self.scheduler = scheduler or SCHEDULERS[options.scheduler].build(space, options)
        # What Tune does with TuneConfig(metric=..., mode=...) before the first trial.
        self.scheduler.set_search_properties(options.metric, options.mode)
        self.trials: list[SimTrial] = []
        self.now = 0.0
        self.events: list[tuple[float, int, SimTrial]] = []  # (time, tie-breaker, trial)
        self._tie = itertools.count()

    # --------------------------------------------------------- what Ray's code calls

    def get_trials(self) -> list[SimTrial]:
        return self.trials

    def stop_trial(self, trial: SimTrial) -> None:
        """As Tune's stop_trial: a waiting trial is removed (the searcher hears of it with
        no result: Optuna marks it PRUNED), a running one completes."""
        if trial.status in (Trial.PAUSED, Trial.PENDING):
            self.scheduler.on_trial_remove(self, trial)
            trial.status = Trial.TERMINATED
            self.searcher.on_trial_complete(trial.trial_id, None)
        elif trial.status == Trial.RUNNING:
            self.events = [e for e in self.events if e[2] is not trial]
            heapq.heapify(self.events)
            trial.trained += self.now - trial.resumed_at  # what it trained since its result
            self._complete(trial)

    # ------------------------------------------------------------------ the loop

    def run(self) -> Trace:
        costs: list[float] = []
        champions: list[int] = []
        suggested = 0
        while True:
            suggested = self._fill_slots(suggested)
            if not self.events:
                break
            self.now, _, trial = heapq.heappop(self.events)
            self._result(trial)
            costs.append(self.cost())
            champions.append(self.champion())
        return Trace(costs, champions, self.cost(), suggested, self.trials)

    def _fill_slots(self, suggested: int) -> int:
        while sum(t.status == Trial.RUNNING for t in self.trials) < self.options.max_concurrent:
            chosen = self.scheduler.choose_trial_to_run(self)
            if chosen is not None:
                self._start(chosen)
                continue
            live = sum(t.status != Trial.TERMINATED for t in self.trials)
            if suggested >= self.options.num_samples or live >= self.options.max_concurrent:
                break
            trial_id = f"{self.options.seed}_{suggested:05d}"
            config = self.searcher.suggest(trial_id)
            if not isinstance(config, dict):
                break  # the searcher is finished
            suggested += 1
            curve = self.landscape.curve(config, trial_id)
            trial = SimTrial(trial_id, config, curve, order=suggested)
            self.trials.append(trial)
            self.scheduler.on_trial_add(self, trial)
        return suggested

    def _start(self, trial: SimTrial) -> None:
        trial.status, trial.resumed_at = Trial.RUNNING, self.now
        if len(trial.results) == len(trial.curve):
            # Paused at its last result, resumed: its function returns at once, and Tune
            # ends it with its last result, asking the scheduler nothing more.
            self._complete(trial)
        else:
            self._schedule_next(trial)

    def _schedule_next(self, trial: SimTrial) -> None:
        row = trial.curve.iloc[len(trial.results)]
        wait = float(row[COST]) - trial.trained
        heapq.heappush(self.events, (self.now + wait, next(self._tie), trial))

    def _result(self, trial: SimTrial) -> None:
        """As Tune's _on_training_result: the scheduler decides first, and the searcher
        hears of the result only if the trial goes on; both get the flattened result,
        with what Tune adds to it (training_iteration, config/<field>)."""
        row = trial.curve.iloc[len(trial.results)]
        metrics = {m: float(row[m]) for m in self.landscape.metrics if pd.notna(row[m])}
        trial.results.append(metrics)
        trial.trained = float(row[COST])
        trial.resumed_at = self.now
        decision = self.scheduler.on_trial_result(self, trial, self._flat(trial))
        if trial.status == Trial.TERMINATED:  # the scheduler stopped it from inside
            return
        if decision != TrialScheduler.STOP:
            self.searcher.on_trial_result(trial.trial_id, self._flat(trial))
        if decision == TrialScheduler.PAUSE:  # even at its last result (HyperBand's max_t)
            trial.status = Trial.PAUSED
        elif decision == TrialScheduler.STOP or len(trial.results) == len(trial.curve):
            self._complete(trial)
        else:
            self._schedule_next(trial)

    def _flat(self, trial: SimTrial) -> dict[str, Any]:
        result = {
            **trial.results[-1],
            "training_iteration": len(trial.results),
            "config": trial.config,
        }
        return flatten_dict(result)

    def _complete(self, trial: SimTrial) -> None:
        """A running trial ends: Tune's stop_trial on a RUNNING trial."""
        self.scheduler.on_trial_complete(self, trial, self._flat(trial))
        trial.status = Trial.TERMINATED
        self.searcher.on_trial_complete(trial.trial_id, self._flat(trial))

    # ------------------------------------------------------------- what it costs, who leads

    def cost(self) -> float:
        """Core-seconds trained so far: each trial's seconds to its last result, plus the
        running ones' time since (1 core per trial)."""
        running = sum(self.now - t.resumed_at for t in self.trials if t.status == Trial.RUNNING)
        return sum(t.trained for t in self.trials) + running

    def champion(self) -> int:
        """The config id of the trial records.ranking puts first, from what was observed
        (-1 while none is ranked)."""
        rows = []
        for t in self.trials:
            if not t.results:
                continue
            last = t.results[-1]
            planned = float(t.curve["steps"].iloc[0])
            if t.status == Trial.TERMINATED:
                status = ranking.trial_outcome(last["step"], planned, last["diverged"] >= 0.5)
            else:
                status = ranking.RUNNING
            rows.append(
                {
                    "trial": t,
                    "value": last[self.options.metric],
                    "step": last["step"],
                    "planned_steps": planned,
                    "status": status,
                    "diverged": last["diverged"] >= 0.5,
                    "start": t.order,
                }
            )
        if not rows:
            return -1
        ranked = ranking.rank_trials(pd.DataFrame(rows), self.options.mode or "min")
        if ranked["rank"].iloc[0] == 0:
            return -1
        return int(ranked["trial"].iloc[0].curve["config_id"].iloc[0])


def true_quality(landscape: Landscape, metric: str = "distance") -> pd.DataFrame:
    """Per config id: the mean of `metric` at its last evaluation over the recorded seeds,
    and its worst seed (a metric where lower is better)."""
    frame = landscape.frame
    last = frame.sort_values("step").groupby(["config_id", "seed"]).tail(1)
    grouped = last.groupby("config_id")[metric]
    return pd.DataFrame({"mean": grouped.mean(), "worst": grouped.max(), "seeds": grouped.size()})


def simulate(
    landscape: Landscape,
    space: SearchSpace,
    options: SweepOptions,
    searcher: Searcher | None = None,
    scheduler: TrialScheduler | None = None,
) -> Trace:
    """One simulated sweep of `options` (sampler, scheduler, seed, budget, concurrency)."""
    return Controller(landscape, space, options, searcher, scheduler).run()
