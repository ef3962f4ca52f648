"""Fault injection with real processes: a sweep survives its driver dying (``gansweep
resume``), a trial's Ray worker dying (a retry from the trial's checkpoint), and a
truncated checkpoint (the retry falls back to the previous one).

Nothing is mocked: each test runs ``gansweep`` as a subprocess in its own working
directory (tmp_path), which starts a real local Ray cluster, writes a real MLflow SQLite
store (``mlflow.db``) and a real Optuna study (``sweeps/<name>/optuna.db``). Faults are
SIGKILLs, so no clean-up code of the killed process runs, as after a power cut. The
`sweeps` fixture (conftest.py) kills whatever is left at the end of a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from faultkit import (
    Sweeps,
    check_trial_run,
    children_by_trial,
    finished_trials,
    kill_session,
    latest_checkpoints,
    load_manifest,
    optuna_trials,
    planned_steps,
    progress_steps,
    session_processes,
    sweep_args,
    tail,
    trial_folders,
    trial_workers,
    tune_trials,
    wait_for,
)
from mlflow import MlflowClient
from mlflow.entities import ViewType
from typer.testing import CliRunner

from gansweep.platform.cli import app
from gansweep.platform.sweep import space_of
from gansweep.platform.tune_glue import LOST_TRIAL_ATTR
from gansweep.records import run_format
from gansweep.records.manifest import Manifest
from gansweep.records.run_format import REPLICA_KEY

# ------------------------------------------------------------ driver kill helpers


def kill_like_a_reboot(proc: subprocess.Popen, started: float) -> None:
    """SIGKILL the sweep's whole session and check that nothing of it is left running."""
    killed = kill_session(proc.pid)
    proc.wait()
    print(f"\nkilled the sweep after {time.monotonic() - started:.1f} s:")
    print("\n".join(f"  {pid} {args[:100]}" for pid, args in killed))
    assert session_processes(proc.pid) == []


def state_at_kill(cwd: Path, name: str) -> tuple[Manifest, dict, set[str]]:
    """What the killed sweep left: its manifest, its Optuna trials by number, and the
    trial ids its restored Tune experiment will know. Printed for the record."""
    manifest = load_manifest(cwd, name)
    optuna_before = {t.number: t for t in optuna_trials(manifest)}
    persisted = {t.trial_id: t.status for t in tune_trials(Path(manifest.sweep_dir))}
    children = {t: [r.info.status for r in rs] for t, rs in children_by_trial(manifest).items()}
    print("at the kill: Optuna", {n: (t.state.name, t.value) for n, t in optuna_before.items()})
    print("  MLflow child runs", children)
    print("  Tune (as persisted)", persisted)
    print("  latest checkpoints", latest_checkpoints(Path(manifest.sweep_dir)))
    return manifest, optuna_before, set(persisted)


def resume_and_check(
    sweeps: Sweeps, manifest: Manifest, optuna_before: dict, samples: int, planned: list[int]
) -> list:
    """Run `gansweep resume` and check that every planned trial ended exactly once in
    Tune, Optuna and MLflow. Returns the child runs of lost trials (asked for after Tune's
    last snapshot of the experiment, so never resumed)."""
    resumed_at = time.monotonic()
    proc = sweeps.start("resume", manifest.name, log="resume.log")
    assert sweeps.wait(proc, 300) == 0, tail(proc)
    print(f"resume took {time.monotonic() - resumed_at:.1f} s")

    # Tune: every planned trial ran to its last step, once.
    trials = tune_trials(Path(manifest.sweep_dir))
    assert len(trials) == samples
    assert [t.status for t in trials] == ["TERMINATED"] * samples
    assert [t.last_result["step"] for t in trials] == [planned[-1]] * samples

    # Optuna: one COMPLETE trial per Tune trial, with its params and final value, and no
    # other trial; the trials completed before the kill kept their values; a trial
    # RUNNING at the kill that no Tune trial continued went back to the queue (marked
    # with LOST_TRIAL_ATTR) and was run again under its own number.
    after = optuna_trials(manifest)
    print("after resume: Optuna", {t.number: (t.state.name, t.value) for t in after})
    complete = [t for t in after if t.state.name == "COMPLETE"]
    searched = {p.name for p in space_of(manifest).params}
    optuna_side = sorted((sorted(t.params.items()), t.value) for t in complete)
    tune_side = sorted(
        (sorted((k, v) for k, v in t.config.items() if k in searched), t.last_result["distance"])
        for t in trials
    )
    assert [params for params, _ in optuna_side] == [params for params, _ in tune_side]
    assert [value for _, value in optuna_side] == pytest.approx([v for _, v in tune_side])
    for number, trial in optuna_before.items():
        if trial.state.name == "COMPLETE":
            assert after[number].state.name == "COMPLETE"
            assert after[number].value == pytest.approx(trial.value)
    assert len(after) == len(complete) == samples
    requeued = {t.number: t for t in after if t.user_attrs.get(LOST_TRIAL_ATTR)}
    assert {optuna_before[n].state.name for n in requeued} <= {"RUNNING"}, requeued

    # MLflow: the same parent run, finished; one finished child run per Tune trial with
    # every evaluation step once.
    client = MlflowClient(manifest.tracking_uri)
    parents = client.search_runs(
        [manifest.experiment_id], filter_string=f"tags.`{run_format.TAG_ROLE}` = 'sweep'"
    )
    assert [r.info.run_id for r in parents] == [manifest.parent_run_id]
    assert parents[0].info.status == "FINISHED"
    grouped = children_by_trial(manifest)
    tune_ids = {t.trial_id for t in trials}
    assert tune_ids <= grouped.keys()
    for trial_id in tune_ids:
        check_trial_run(manifest, grouped[trial_id], planned)
    # A lost trial's child run (if it got one) is deleted, so that it counts nowhere, and
    # belongs to one of the requeued Optuna trials.
    assert grouped.keys() == tune_ids
    lost = client.search_runs(
        [manifest.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{manifest.parent_run_id}'",
        run_view_type=ViewType.DELETED_ONLY,
    )
    print("lost trials' child runs:", {r.info.run_name: r.info.status for r in lost})
    assert [r.info.status for r in lost] == ["KILLED"] * len(lost)
    assert not {r.data.tags[run_format.TAG_TRIAL_ID] for r in lost} & tune_ids
    requeued_params = {n: {k: str(v) for k, v in t.params.items()} for n, t in requeued.items()}
    matches = [
        [n for n, params in requeued_params.items() if params.items() <= r.data.params.items()]
        for r in lost
    ]
    assert [len(m) for m in matches] == [1] * len(lost), matches
    assert len({m[0] for m in matches}) == len(lost), matches
    return lost


# ------------------------------------------------------------------- the tests


@pytest.mark.slow
def test_a_sweep_whose_driver_is_killed_resumes_and_ends_every_trial_once(sweeps, tmp_path):
    """Fault: the driver and its whole Ray cluster are SIGKILLed mid-sweep (a reboot),
    after one trial finished and while another is midway with a checkpoint.
    Must survive: `gansweep resume` ends every planned trial exactly once (Tune, Optuna,
    MLflow agree), keeps the finished trials' results, continues the same MLflow parent
    run, and exports a best.yaml that `gansweep train` accepts."""
    name, samples, steps, eval_every = "crash", 4, 600, 100
    planned = planned_steps(steps, eval_every)
    sweep_dir = tmp_path / "sweeps" / name
    started = time.monotonic()
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", str(samples)),
        "--max-concurrent", "2", log="sweep.log",
    )  # fmt: skip

    def one_finished_and_another_midway() -> bool:
        # Midway: checkpointed, two evaluations or more from its end, so it cannot finish
        # in the moment between this check and the kill.
        finished = finished_trials(load_manifest(tmp_path, name))
        latest = latest_checkpoints(sweep_dir)
        midway = {t for t, i in latest.items() if t not in finished and i <= len(planned) - 3}
        return bool(finished) and bool(midway)

    wait_for("finished trial + one midway", one_finished_and_another_midway, proc, 300)
    parent_run_id = load_manifest(tmp_path, name).parent_run_id
    kill_like_a_reboot(proc, started)
    manifest, optuna_before, _ = state_at_kill(tmp_path, name)
    finished_before = finished_trials(manifest)

    resume_and_check(sweeps, manifest, optuna_before, samples, planned)
    assert finished_before <= {t.trial_id for t in tune_trials(sweep_dir)}
    assert load_manifest(tmp_path, name).parent_run_id == parent_run_id == manifest.parent_run_id

    # The exported best config retrains.
    best = sweep_dir / "best.yaml"
    assert best.is_file()
    args = ["train", str(best), "--set", "steps=20", "--set", "eval_every=10"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "retrain")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "retrain" / "metrics.json").is_file()


@pytest.mark.slow
def test_a_trial_started_after_the_last_snapshot_is_deleted_on_resume(sweeps, tmp_path):
    """Fault: the driver is SIGKILLed (with its cluster) seconds after it started a trial,
    before Tune saved that trial in its experiment state (it saves every 10 s or every
    other trial checkpoint), so the resumed experiment does not know the trial.
    Must survive: the resume still ends every planned trial exactly once; the lost
    trial's Optuna trial goes back to the queue and runs again under its own number, and
    its MLflow child run is deleted (KILLED, in MLflow's deleted runs), so that the sweep
    counts exactly the trials asked for."""
    name, samples, steps, eval_every = "lost", 3, 600, 100
    planned = planned_steps(steps, eval_every)
    sweep_dir = tmp_path / "sweeps" / name
    started = time.monotonic()
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", str(samples)),
        "--max-concurrent", "1", log="sweep.log",
    )  # fmt: skip

    def a_new_trial_has_a_run_and_no_checkpoint() -> bool:
        manifest = load_manifest(tmp_path, name)
        finished = finished_trials(manifest)
        if not finished:
            return False
        try:
            running = set(children_by_trial(manifest)) - finished
        except Exception:  # the driver holds the SQLite write lock right now
            return False
        return bool(running - latest_checkpoints(sweep_dir).keys())

    wait_for("a second trial's run", a_new_trial_has_a_run_and_no_checkpoint, proc, 300)
    kill_like_a_reboot(proc, started)
    manifest, optuna_before, persisted = state_at_kill(tmp_path, name)
    unknown = set(children_by_trial(manifest)) - persisted
    if not unknown:
        pytest.skip("Tune saved the new trial before the kill: no trial was lost this time")

    lost = resume_and_check(sweeps, manifest, optuna_before, samples, planned)
    assert sorted(r.data.tags[run_format.TAG_TRIAL_ID] for r in lost) == sorted(unknown)
    requeued = [t for t in optuna_trials(manifest) if t.user_attrs.get(LOST_TRIAL_ATTR)]
    assert len(requeued) == len(unknown)


@pytest.mark.slow
def test_a_trial_whose_worker_is_killed_continues_from_its_checkpoint(sweeps, tmp_path):
    """Fault: the Ray worker process running a trial is SIGKILLed after the trial's first
    checkpoint (an out-of-memory kill, a lost node).
    Must survive: Tune retries the trial from its checkpoint (--max-failures 2), the sweep
    ends with exit code 0, and the trial keeps one MLflow child run whose metric history
    has every evaluation step exactly once."""
    name, steps, eval_every = "worker", 2000, 200
    planned = planned_steps(steps, eval_every)
    sweep_dir = tmp_path / "sweeps" / name
    started = time.monotonic()
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", "1"),
        "--max-failures", "2", log="sweep.log",
    )  # fmt: skip
    wait_for("trial checkpoint", lambda: bool(latest_checkpoints(sweep_dir)), proc, 240)

    workers = trial_workers(proc)
    print(f"\ntrial workers after the first checkpoint ({time.monotonic() - started:.1f} s):")
    print("\n".join(f"  {pid} {args}" for pid, args in workers))
    assert len(workers) == 1, session_processes(proc.pid)
    os.kill(workers[0][0], signal.SIGKILL)

    assert sweeps.wait(proc, 300) == 0, tail(proc)
    print(f"sweep took {time.monotonic() - started:.1f} s")

    manifest = load_manifest(tmp_path, name)
    [trial] = tune_trials(sweep_dir)
    assert trial.status == "TERMINATED"
    assert trial.num_failures == 1
    assert trial.last_result["step"] == steps
    # Continued, not restarted: Tune never saw a step twice or out of order.
    assert progress_steps(trial_folders(sweep_dir)[trial.trial_id]) == planned
    grouped = children_by_trial(manifest)
    assert sorted(grouped) == [trial.trial_id]
    check_trial_run(manifest, grouped[trial.trial_id], planned)


@pytest.mark.slow
def test_a_truncated_checkpoint_is_refused_and_the_retry_falls_back_to_the_one_before(
    sweeps, tmp_path
):
    """Fault: after the trial's second checkpoint, the newest checkpoint file is truncated
    (a crash in the middle of a write, a full disk) and then the trial's worker is
    SIGKILLed, so Tune's retry has to restore from that very file.
    Must survive: the retry refuses the truncated file with a clear error and falls back
    to the checkpoint before it (one evaluation interval is trained again), the sweep ends
    with exit code 0, and the trial keeps one MLflow child run whose metric history has
    every evaluation step exactly once."""
    name, steps, eval_every = "corrupt", 2000, 200
    planned = planned_steps(steps, eval_every)
    sweep_dir = tmp_path / "sweeps" / name
    started = time.monotonic()
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", "1"),
        "--max-failures", "2", log="sweep.log",
    )  # fmt: skip

    def acknowledged() -> dict[str, int]:
        """Trials whose newest checkpoint the driver has taken in (its result is the last
        line of result.json): the checkpoint Tune restores a retry from."""
        folders = trial_folders(sweep_dir)
        try:
            return {
                t: i
                for t, i in latest_checkpoints(sweep_dir).items()
                if len(progress_steps(folders[t])) == i + 1
            }
        except (ValueError, TypeError, KeyError):  # a line of result.json half written: again
            return {}

    # Freeze the worker so that it writes no newer checkpoint while this one is corrupted;
    # if it had persisted a newer one the driver has not taken in yet, let it go on and
    # try again at the next checkpoint.
    def second_checkpoint() -> bool:
        return max(acknowledged().values(), default=0) >= 1

    for _ in range(5):
        wait_for("second checkpoint", second_checkpoint, proc, 300)
        workers = trial_workers(proc)
        assert len(workers) == 1, session_processes(proc.pid)
        worker = workers[0][0]
        os.kill(worker, signal.SIGSTOP)
        time.sleep(2.0)  # a result already on its way reaches the driver
        latest = latest_checkpoints(sweep_dir)
        if latest == acknowledged():
            break
        os.kill(worker, signal.SIGCONT)
    else:
        pytest.fail(f"never caught the trial between two checkpoints\n{tail(proc)}")
    [(trial_id, index)] = latest.items()
    folder = trial_folders(sweep_dir)[trial_id]
    newest = folder / f"checkpoint_{index:06d}" / "trial.pt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    os.kill(worker, signal.SIGKILL)
    print(f"\ntruncated {newest} ({len(data)} -> {len(data) // 2} bytes) and killed {worker}")

    assert sweeps.wait(proc, 300) == 0, tail(proc)
    print(f"sweep took {time.monotonic() - started:.1f} s")

    # Refused with a clear error naming the file, then the previous checkpoint was used.
    output = proc.log.read_text(errors="replace")
    previous = folder / f"checkpoint_{index - 1:06d}"
    assert f"fell back to {previous}: cannot read checkpoint {newest}" in output, tail(proc)

    manifest = load_manifest(tmp_path, name)
    [trial] = tune_trials(sweep_dir)
    assert trial.status == "TERMINATED"
    assert trial.num_failures == 1
    assert trial.last_result["step"] == steps
    # Tune saw the step of the refused checkpoint twice: once before the fault and once
    # after the retry trained again from the checkpoint before it.
    assert progress_steps(folder) == planned[: index + 1] + planned[index:]
    grouped = children_by_trial(manifest)
    assert sorted(grouped) == [trial.trial_id]
    check_trial_run(manifest, grouped[trial.trial_id], planned)


@pytest.mark.slow
@pytest.mark.parametrize(
    "scheduler, where",
    [("fifo", "inside the search"), ("hyperband", "own experiment")],
    ids=["inside-the-search", "own-experiment"],
)
def test_a_replication_whose_driver_is_killed_resumes_without_running_a_seed_twice(
    sweeps, tmp_path, scheduler, where
):
    """Fault: the driver is SIGKILLed (with its cluster) during the replication, after one
    replica finished and while another is midway: under FIFO the replicas run inside the
    search's Tune experiment (platform/backfill.py), under HyperBand in their own.
    Must survive: `gansweep resume` continues that experiment; every (config, fresh seed)
    pair ends with exactly one finished replica run, no search trial is run again, and
    best.yaml records the spread over all the seeds."""
    name, steps, eval_every, top, seeds = "replicas", 600, 100, 1, 3
    planned = planned_steps(steps, eval_every)
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", "2", "--replicate-top",
                    str(top), "--seeds", str(seeds)),
        "--scheduler", scheduler, "--max-concurrent", "1", log="sweep.log",
    )  # fmt: skip
    started = time.monotonic()

    def replicas_of(manifest: Manifest) -> list:
        runs = [r for rs in children_by_trial(manifest).values() for r in rs]
        return [r for r in runs if r.data.tags.get(run_format.TAG_ROLE) == "replica"]

    def one_replica_finished_and_another_midway() -> bool:
        manifest = load_manifest(tmp_path, name)
        if manifest is None:
            return False
        try:
            replicas = replicas_of(manifest)
        except Exception:  # the driver holds the SQLite write lock right now
            return False
        done = [r for r in replicas if r.data.tags.get(run_format.TAG_STATUS) == "finished"]
        midway = {
            **latest_checkpoints(Path(manifest.sweep_dir)),
            **latest_checkpoints(manifest.replicas_dir),
        }
        replica_trials = {r.data.tags[run_format.TAG_TRIAL_ID] for r in replicas}
        return bool(done) and any(
            i <= len(planned) - 3 for tid, i in midway.items() if tid in replica_trials
        )

    wait_for("a finished replica + one midway", one_replica_finished_and_another_midway,
             proc, 400)  # fmt: skip
    kill_like_a_reboot(proc, started)
    manifest = load_manifest(tmp_path, name)
    inside = manifest.replication is None  # the search's experiment had not ended
    assert inside == (where == "inside the search")

    def search_trials() -> set[str]:
        return {
            t.trial_id for t in tune_trials(Path(manifest.sweep_dir)) if REPLICA_KEY not in t.config
        }

    searched = search_trials()
    assert len(searched) == 2

    proc = sweeps.start("resume", name, log="resume.log")
    assert sweeps.wait(proc, 400) == 0, tail(proc)
    manifest = load_manifest(tmp_path, name)
    assert manifest.status == "finished" and manifest.replication.status == "finished"
    assert search_trials() == searched
    assert manifest.replicas_dir.exists() == (not inside)
    replicas = replicas_of(manifest)
    finished = [r for r in replicas if r.data.tags[run_format.TAG_STATUS] == "finished"]
    pairs = sorted((r.data.tags["replica_of"], r.data.tags["seed"]) for r in finished)
    expected = sorted((t, str(s)) for t in manifest.replication.trial_ids
                      for s in manifest.replication.seeds)  # fmt: skip
    assert pairs == expected  # every pair finished once: none lost, none run twice
    for run in finished:
        check_trial_run(manifest, [run], planned)
    # A replica lost with the driver (started after Tune's last snapshot) is deleted; its
    # seed was retrained under a new run, the one that counts: no other run is left.
    assert [r for r in replicas if r not in finished] == []
    best = yaml.safe_load((Path(manifest.sweep_dir) / "best.yaml").read_text())
    assert best["_provenance"]["replicated"]["seeds"] == seeds


@pytest.mark.slow
def test_ctrl_c_leaves_the_sweep_interrupted_and_resume_finishes_it(sweeps, tmp_path):
    """Fault: the user presses Ctrl-C (SIGINT to the driver) while the search runs.
    Must survive: the command stops with exit code 130 and says how to go on; the sweep
    is marked interrupted, not finished, and nothing was replicated from a search that
    never ended; `gansweep resume` then ends every planned trial and the replication."""
    name, samples, steps, eval_every = "ctrlc", 3, 600, 100
    planned = planned_steps(steps, eval_every)
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", str(samples), "--replicate-top",
                    "1", "--seeds", "1"),
        "--max-concurrent", "1", log="sweep.log",
    )  # fmt: skip
    wait_for(
        "a first checkpoint",
        lambda: bool(latest_checkpoints(tmp_path / "sweeps" / name)),
        proc,
        300,
    )
    os.kill(proc.pid, signal.SIGINT)
    assert sweeps.wait(proc, 120) == 130, tail(proc)
    assert f"continue it with `gansweep resume {name}`" in proc.log.read_text()
    manifest = load_manifest(tmp_path, name)
    assert manifest.status == "interrupted" and manifest.replication is None

    proc = sweeps.start("resume", name, log="resume.log")
    assert sweeps.wait(proc, 400) == 0, tail(proc)
    manifest = load_manifest(tmp_path, name)
    assert manifest.status == "finished" and manifest.replication.status == "finished"
    # The search's trials and, under FIFO, the replica that ran inside its experiment.
    trials = tune_trials(Path(manifest.sweep_dir))
    assert [t.last_result["step"] for t in trials] == [planned[-1]] * (samples + 1)
    [replica] = [t for t in trials if REPLICA_KEY in t.config]
    assert replica.config[REPLICA_KEY] == manifest.replication.trial_ids[0]
