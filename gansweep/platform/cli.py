"""The `gansweep` command line.

Exit codes: 0 done; 2 bad input (a message names the bad value and the valid ones,
nothing is launched or written); 1 an unexpected failure.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import typer

app = typer.Typer(
    name="gansweep",
    help="Large GAN studies: sweeps on Ray Tune, guided by Optuna, recorded in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

BAD_INPUT = 2


@app.callback()
def _root() -> None:
    """Large GAN studies: sweeps on Ray Tune, guided by Optuna, recorded in MLflow."""


def fail(message: str) -> typer.Exit:
    """Print an error for bad input and return the exit to raise (code 2)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(BAD_INPUT)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@app.command()
def train(
    config: Path | None = typer.Argument(
        None, help="YAML file of TrialConfig fields (omit for the defaults).", show_default=False
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a field: --set key=value (repeatable)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder [default: runs/<dataset>-<combination>-<time>]."
    ),
) -> None:
    """Train one GAN and write metrics.json, samples.png and checkpoint.pt."""
    import io

    import torch
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from gansweep.trainables.config import ConfigError, read_config
    from gansweep.trainables.data import DataUnavailableError
    from gansweep.trainables.engine import GANTrainer
    from gansweep.trainables.samples import save_samples

    try:
        cfg = read_config(config, overrides)
        trainer = GANTrainer(cfg)
    except (ConfigError, DataUnavailableError) as err:
        raise fail(str(err)) from None
    except RuntimeError as err:  # e.g. device cuda requested where none is visible
        raise fail(str(err)) from None

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = out or Path("runs") / f"{cfg.dataset}-{cfg.combination}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.jsonl").unlink(missing_ok=True)
    typer.echo(f"training {cfg.combination} on {cfg.dataset} ({trainer.device}) -> {out}")

    def checkpoint() -> None:
        buffer = io.BytesIO()
        torch.save(trainer.state_dict(), buffer)
        _atomic_write_bytes(out / "checkpoint.pt", buffer.getvalue())

    history: list[dict[str, float]] = []
    started = time.perf_counter()
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("steps", total=cfg.steps, status="")
        while not trainer.done:
            trainer.train_step()
            progress.update(task, completed=trainer.step)
            if trainer.step % cfg.eval_every == 0 or trainer.done:
                metrics = trainer.evaluate()
                metrics["seconds"] = time.perf_counter() - started
                history.append(metrics)
                with (out / "history.jsonl").open("a") as f:
                    f.write(json.dumps(metrics) + "\n")
                checkpoint()  # at every evaluation: a crash loses one interval at most
                progress.update(task, status=f"distance {metrics['distance']:.4g}")

    final = history[-1]
    final["steps_per_second"] = trainer.step / final["seconds"]
    _atomic_write_bytes(out / "metrics.json", json.dumps(final, indent=2).encode())
    save_samples(trainer, out / "samples.png")
    for key, value in final.items():
        typer.echo(f"  {key:<26} {value:.6g}")
    if trainer.diverged:
        typer.secho(f"diverged at step {trainer.step}", fg=typer.colors.YELLOW)
    typer.echo(f"wrote {out / 'metrics.json'}, {out / 'samples.png'}, {out / 'checkpoint.pt'}")


if __name__ == "__main__":  # pragma: no cover - the console script calls `app`
    app()
