"""`gansweep train`: one GAN, no Ray, no MLflow. It consumes the same engine loop as a
sweep's trial (trainables/checkpoint.costed_evaluations) and writes the trial's own
checkpoint format (``trial.pt``), so a config moves between the two unchanged.

Its folder holds ``history.jsonl`` (every evaluation), ``trial.pt`` and ``generator.pt``
(rewritten at every evaluation: a crash loses one interval at most), then
``metrics.json`` (the last evaluation) and ``samples.png``.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gansweep.files import atomic_write_bytes, atomic_write_text
from gansweep.profiling import Profile
from gansweep.records.run_format import GENERATOR_FILE, SAMPLES_FILE
from gansweep.trainables.checkpoint import (
    CHECKPOINT_FILE,
    costed_evaluations,
    save_trial_checkpoint,
)
from gansweep.trainables.config import ConfigError, TrialConfig, read_config
from gansweep.trainables.data import DataUnavailableError
from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.image_metrics import InceptionWeightsError
from gansweep.trainables.run_setup import default_threads
from gansweep.trainables.samples import save_samples

HISTORY_FILE = "history.jsonl"
METRICS_FILE = "metrics.json"
# What a run writes: an --out that holds any of them holds a run.
RUN_FILES = (HISTORY_FILE, METRICS_FILE, SAMPLES_FILE, CHECKPOINT_FILE, GENERATOR_FILE)


class TrainInputError(ValueError):
    """Bad input to `gansweep train`; the CLI turns it into exit code 2."""


@dataclass
class Prepared:
    trainer: GANTrainer
    out: Path


def prepare(
    config: Path | None, overrides: list[str], out: Path | None, threads: int | None, force: bool
) -> Prepared:
    """Check everything (config, data, Inception weights, the folder) before the first
    step; create only the output folder."""
    try:
        cfg = read_config(config, overrides)
        trainer = GANTrainer(cfg, threads=threads)  # loads and checks the data
    except (ConfigError, DataUnavailableError, InceptionWeightsError) as err:
        raise TrainInputError(str(err)) from None
    except RuntimeError as err:  # e.g. device cuda requested where none is visible
        raise TrainInputError(str(err)) from None
    if threads is None:  # what fits the model, known once the data is loaded
        torch.set_num_threads(default_threads(trainer.data.shape))
    return Prepared(trainer, _out_folder(cfg, out, force))


def _out_folder(cfg: TrialConfig, out: Path | None, force: bool) -> Path:
    """The given folder, refused if it holds a run (unless `force`, which removes that
    run's files and nothing else); or a new one under runs/, unique even for two runs
    started in the same second (mkdir fails for the second: it takes the next name)."""
    if out is not None:
        held = [name for name in RUN_FILES if (out / name).exists()]
        if held and not force:
            raise TrainInputError(
                f"--out {str(out)!r} holds a run already ({', '.join(held)}); give another "
                "--out, or --force to replace that run"
            )
        out.mkdir(parents=True, exist_ok=True)
        for name in held:
            (out / name).unlink()
        return out
    stem = Path("runs") / f"{cfg.dataset}-{cfg.combination}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        folder = stem if attempt == 1 else stem.with_name(f"{stem.name}-{attempt}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise TrainInputError(f"no free folder name next to {stem}; give --out")


def train(prepared: Prepared) -> dict[str, float]:
    """Train to the end with a progress bar; returns the last evaluation's metrics."""
    trainer, out = prepared.trainer, prepared.out
    clock, started = Profile("train"), time.perf_counter()
    history: list[dict[str, float]] = []
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("steps", total=trainer.config.steps, status="")

        def on_step(step: int) -> None:
            progress.update(task, completed=step)

        for metrics in costed_evaluations(trainer, clock, {}, on_step):
            metrics["seconds"] = time.perf_counter() - started  # files written included
            history.append(metrics)
            with (out / HISTORY_FILE).open("a") as f:
                f.write(json.dumps(metrics) + "\n")
            save_trial_checkpoint(out, trainer, run_id="", metrics=metrics)
            buffer = io.BytesIO()
            torch.save(trainer.generator_state_dict(), buffer)  # what load_generator reads
            atomic_write_bytes(out / GENERATOR_FILE, buffer.getvalue())
            progress.update(task, status=f"distance {metrics['distance']:.4g}")
    final = history[-1]
    final["steps_per_second"] = trainer.step / max(final["seconds"], 1e-9)
    atomic_write_text(out / METRICS_FILE, json.dumps(final, indent=2))
    save_samples(trainer, out / SAMPLES_FILE)
    return final


def print_result(prepared: Prepared, final: dict[str, float]) -> None:
    trainer, out = prepared.trainer, prepared.out
    for key, value in final.items():
        typer.echo(f"  {key:<26} {value:.6g}")
    if trainer.diverged:
        typer.secho(f"diverged at step {trainer.step}", fg=typer.colors.YELLOW)
    written = ", ".join(str(out / n) for n in (METRICS_FILE, SAMPLES_FILE, CHECKPOINT_FILE))
    typer.echo(f"wrote {written}, {out / GENERATOR_FILE}")
    typer.echo(f"sample from it: load_generator({str(out / GENERATOR_FILE)!r}), see the README")


def print_start(prepared: Prepared) -> None:
    trainer, cfg = prepared.trainer, prepared.trainer.config
    where = f"{trainer.device}, {torch.get_num_threads()} threads"
    typer.echo(f"training {cfg.combination} on {cfg.dataset} ({where}) -> {prepared.out}")
