"""The one rule for how a trial ended and how trials rank. The console leaderboard,
``leaderboard.csv``, the report and ``export`` all rank through this module.

How a trial ended (its ``gansweep.status``):
- ``finished``: trained its planned steps; ``stopped_early``: the scheduler stopped it;
  ``diverged``: a loss or a sample became non-finite; ``failed``: an error, for good;
- while there is no outcome yet: ``running``, or ``interrupted`` when the sweep's driver
  is no longer running.

How trials rank -- only results at equal budget are compared:
1. trials that reached their planned steps come before those that did not (stopped
   early, still running, interrupted);
2. among those, more steps come first: a result at step 3,000 is never compared with
   one at step 500;
3. at equal steps, the better metric comes first; ties keep the order the trials started.
Diverged and failed trials, and trials with no result yet, are not ranked.

How replicated configs rank (a top trial retrained on fresh seeds, Lucic et al. 2018):
by the worst seed's metric, then by the mean over seeds. The champion must hold on
every seed, not on average, so the worst seed decides.

How the leaderboard combines the two (rank_board): a config's replicas decide its place
only once its verdict is certain, and never lift it above a config that is better by
the metric merely because that one's replicas are not all in yet:
1. a config that held on every one of its planned fresh seeds is "held". The held
   configs rank among themselves by the replica rule, and stand together where the best
   of them by the trial rule stands: a trial that beats all of them by the metric (one
   never replicated, or whose replicas are still running or were cut short by
   --time-budget or an interrupt) ranks above them; every other trial below them;
2. every other ranked trial, configs still being replicated among them, by the trial
   rule: a replica or two decide nothing (and which config's replicas end first is the
   scheduler's order, not merit);
3. a config that diverged or failed on a fresh seed did not hold, whatever its other
   seeds do: it ranks after every other ranked trial (by the replica rule);
4. the unranked trials.
The top K configs by the trial rule are the ones replicated (platform/replicate.py,
platform/replica_plan.py), so once their replication is complete the held configs are
the top of the trial order and rank first: a claim checked on fresh seeds beats one
that was not. Which seeds are planned comes from the sweep's manifest; with no plan
known no config's replication counts as complete.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gansweep.trainables.metric_registry import METRICS

FINISHED = "finished"
STOPPED_EARLY = "stopped_early"
DIVERGED = "diverged"
FAILED = "failed"
RUNNING = "running"
INTERRUPTED = "interrupted"
ENDED = (FINISHED, STOPPED_EARLY, DIVERGED, FAILED)
RANKABLE = (FINISHED, STOPPED_EARLY, RUNNING, INTERRUPTED)

# The per-seed metrics summarized for replicated configs, with the direction of each
# ("the metric" is the sweep's own, whose direction is the sweep's mode).
REPLICA_METRICS = {name: METRICS[name].mode for name in ("modes_captured", "high_quality")}
# The rule in one sentence, for the console and the report.
RULE = (
    "replicated configs that held on every fresh seed rank first, by their worst seed, then "
    "their mean, but never above a trial that beats them all by the metric and was not "
    "replicated on all its planned seeds (yet); the other trials by the metric at equal "
    "budget (full budget first); configs that diverged or failed on a fresh seed last"
)


def trial_outcome(step: float, planned_steps: float, diverged: bool, failed: bool = False) -> str:
    """How a trial that ended, ended: finished | stopped_early | diverged | failed."""
    if failed:
        return FAILED
    if diverged:
        return DIVERGED
    return FINISHED if step >= planned_steps else STOPPED_EARLY


def recorded_status(tag: object, run_status: str, sweep_running: bool) -> str:
    """A run's status from its records: its ``gansweep.status`` tag if it has one, else
    from MLflow's run status (a run with no outcome yet is running or interrupted)."""
    if isinstance(tag, str) and tag:
        return tag
    if run_status == "RUNNING":
        return RUNNING if sweep_running else INTERRUPTED
    if run_status in ("FAILED", "KILLED"):
        return FAILED
    return FINISHED


def signed(values: pd.Series | np.ndarray, mode: str) -> np.ndarray:
    """Values turned so that smaller is better, whatever the mode."""
    array = np.asarray(values, dtype=float)
    return array if mode == "min" else -array


def worst_value(mode: str) -> float:
    return math.inf if mode == "min" else -math.inf


def rank_trials(trials: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Sort trials best first by the rule above and number the ranked ones 1, 2, ...

    Reads the columns value, step, planned_steps, status, diverged and start; returns a
    copy with ``rank`` (0 for unranked trials, which come last in start order).
    """
    out = trials.copy()
    value = pd.to_numeric(out["value"], errors="coerce").astype(float)
    step = pd.to_numeric(out["step"], errors="coerce").fillna(0).astype(float)
    planned = pd.to_numeric(out["planned_steps"], errors="coerce").astype(float)
    ranked = (
        out["status"].isin(RANKABLE) & ~out["diverged"].astype(bool) & np.isfinite(value)
    ).to_numpy()
    full_budget = (step >= planned).to_numpy()
    # Unranked trials: every key but the first equal, so they keep their start order.
    out["_unranked"] = ~ranked
    out["_short"] = ~full_budget & ranked
    out["_steps"] = np.where(ranked, -step, 0.0)
    out["_value"] = np.where(ranked, signed(value, mode), 0.0)
    keys = ["_unranked", "_short", "_steps", "_value", "start"]
    out = out.sort_values(keys, kind="stable").drop(columns=keys[:-1])
    out["rank"] = 0
    out.loc[out.index[: int(ranked.sum())], "rank"] = np.arange(1, int(ranked.sum()) + 1)
    return out.reset_index(drop=True)


def one_run_per_seed(replicas: pd.DataFrame) -> pd.DataFrame:
    """One replica run per (config, seed): a replica lost with a killed driver is closed
    as failed and retrained under a new run, and the retrained one counts; of several
    runs the newest that did not fail is kept (else the newest)."""
    if replicas.empty:
        return replicas
    order = replicas.assign(_failed=replicas["status"] == FAILED, _start=-replicas["start"])
    order = order.sort_values(["_failed", "_start"], kind="stable")
    kept = order.drop_duplicates(["replica_of", "seed"]).drop(columns=["_failed", "_start"])
    return kept.sort_index()


def counted_replicas(replicas: pd.DataFrame) -> pd.DataFrame:
    """The replica runs a config's seeds are judged by: one run per seed
    (one_run_per_seed), ended, with ``broken`` (diverged or failed) added."""
    return _ended(one_run_per_seed(replicas))


def _ended(per_seed: pd.DataFrame) -> pd.DataFrame:
    ended = per_seed[per_seed["status"].isin(ENDED)]
    broken = ended["status"].isin([DIVERGED, FAILED]) | ended["diverged"].astype(bool)
    return ended.assign(broken=broken)


def replica_summary(
    replicas: pd.DataFrame, mode: str, seeds_planned: int, metric: str = ""
) -> pd.DataFrame:
    """One row per replicated config, best first by the robust rule above.

    `replicas` has one row per replica run with the columns replica_of, seed, status,
    diverged, value (the sweep's `metric`) and the REPLICA_METRICS that exist. Returns:
    replica_of, seeds (how many replicas ended), seeds_planned, complete, broken (how many
    diverged or failed), mean, sd, worst, and for each replica metric m other than
    `metric`: m_mean, m_sd, m_worst; then ``robust_rank`` (1, 2, ...).

    A replica that has not ended yet is left out (the row is then not complete). Means
    and standard deviations are over the seeds that gave a result; a seed that diverged
    or failed makes the worst value the worst possible one (inf, or -inf for "max"). A
    replica metric that no run reports (the mode metrics of an image data set) is NaN.
    """
    per_seed = one_run_per_seed(replicas)
    counted = _ended(per_seed)
    extra = {name: d for name, d in REPLICA_METRICS.items() if name != metric}
    columns = ["replica_of", "seeds", "seeds_planned", "complete", "broken", "mean", "sd"]
    columns += ["worst", *(f"{m}_{s}" for m in extra for s in ("mean", "sd", "worst"))]
    rows = []
    for source in per_seed["replica_of"].unique():  # configs with no ended seed too
        ended = counted[counted["replica_of"] == source]
        broken = ended["broken"]
        row: dict[str, object] = {"replica_of": source, "seeds": len(ended)}
        # With no plan known (0), no config is complete: nothing says all its seeds are in.
        complete = seeds_planned > 0 and len(ended) >= seeds_planned
        row.update(seeds_planned=seeds_planned, complete=complete)
        row["broken"] = int(broken.sum())
        for name, direction in {"": mode, **extra}.items():
            column = name or "value"
            prefix = f"{name}_" if name else ""
            if column not in ended:  # not reported by this data set
                row.update({f"{prefix}{s}": math.nan for s in ("mean", "sd", "worst")})
                continue
            values = pd.to_numeric(ended[column], errors="coerce").astype(float)[~broken]
            values = values[np.isfinite(values)]
            row[f"{prefix}mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{prefix}sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            if broken.any() or len(values) < len(ended):  # what a diverged run reports
                row[f"{prefix}worst"] = METRICS[name].worst if name else worst_value(direction)
            elif len(values):
                row[f"{prefix}worst"] = float(values.max() if direction == "min" else values.min())
            else:
                row[f"{prefix}worst"] = math.nan
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    # Complete configs first; then the worst seed, then the mean (NaN: nothing ended yet).
    worst = np.nan_to_num(signed(table["worst"], mode), nan=np.inf, posinf=np.inf)
    mean = np.nan_to_num(signed(table["mean"], mode), nan=np.inf, posinf=np.inf)
    incomplete = ~table["complete"].to_numpy(dtype=bool)
    table = table.iloc[np.lexsort((mean, worst, incomplete))].reset_index(drop=True)
    table["robust_rank"] = np.arange(1, len(table) + 1)
    return table


def rank_board(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's order by the rule above, best first, with ``rank`` (1, 2, ...
    for the ranked rows, 0 for the others) and ``held``.

    `board` has one row per trial, in the trial order, with ``trial_rank`` (rank_trials'
    rank, 0: unranked) and, for replicated configs, replica_summary's ``robust_rank``,
    ``broken`` and ``complete`` (NaN for the others).
    """
    n = len(board)
    trial_rank = pd.to_numeric(board["trial_rank"], errors="coerce").fillna(0).to_numpy(float)
    robust = pd.to_numeric(board["robust_rank"], errors="coerce").to_numpy(float)
    replicated = ~np.isnan(robust)
    broke = replicated & (pd.to_numeric(board["broken"], errors="coerce").fillna(0) > 0).to_numpy()
    held = replicated & ~broke & board["complete"].fillna(False).to_numpy(dtype=bool)
    ranked = (trial_rank > 0) | replicated
    place = np.where(trial_rank > 0, trial_rank, np.inf)
    if held.any():  # the held configs stand together where the best of them stands
        place = np.where(held, place[held].min(), place)
    place = np.where(broke, 0.0, place)  # last tier: the replica rule alone orders it
    tier = np.select([~ranked, broke], [2, 1], default=0)
    within = np.where(held | broke, robust, np.inf)  # the replica rule, where it decides
    order = np.lexsort((np.arange(n), within, place, tier))  # last key first
    out = board.iloc[order].reset_index(drop=True)
    out["rank"] = 0
    out.loc[out.index[: int(ranked.sum())], "rank"] = np.arange(1, int(ranked.sum()) + 1)
    out["held"] = held[order]  # replicated, and held on every planned seed
    return out
