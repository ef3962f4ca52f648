"""The command line's options, each declared once (flag, help, shown default) for every
command that takes it. Their default values are SweepOptions' (options.DEFAULTS), set
where a command names its parameter; the sampler and scheduler lists come from their
registries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gansweep.platform.samplers import SAMPLERS
from gansweep.platform.schedulers import SCHEDULERS
from gansweep.platform.trainable_registry import FORMS, TRAINABLES

TRACKING_DEFAULT = "sqlite:///mlflow.db in this folder"
SCHEDULER_HELP = "; ".join(f"{name}: {spec.summary}" for name, spec in SCHEDULERS.items())

# Shared by several commands.
Storage = Annotated[
    str,
    typer.Option(
        "--storage", help="Folder that holds the sweeps (a shared file system path on clusters)."
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI.", show_default=TRACKING_DEFAULT),
]
Address = Annotated[
    str | None,
    typer.Option(
        "--address", help="Ray cluster address (RAY_ADDRESS works too).", show_default="local"
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose",
        help="Show Ray's, Tune's and MLflow's own output here (else: driver.log in the sweep).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]

# train
ConfigFile = Annotated[
    Path | None,
    typer.Argument(
        help="YAML file of TrialConfig fields (omit for the defaults).", show_default=False
    ),
]
FieldOverrides = Annotated[
    list[str], typer.Option("--set", help="Override a field: --set key=value (repeatable).")
]
Out = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Output folder (refused if it holds a run, unless --force).",
        show_default="runs/<dataset>-<combination>-<time>",
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Replace the run in --out.")]
TakeOver = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Take over the sweep's lock from a driver that looks dead (no heartbeat for "
        "60 s) but cannot be checked from this host.",
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="Torch's CPU threads.",
        show_default="1 for 2-D data and images up to 16 px, else up to 4",
    ),
]

# sweep
Space = Annotated[str, typer.Option("--space", help="Built-in space name or YAML path.")]
Name = Annotated[
    str | None, typer.Option("--name", help="Sweep name.", show_default="<space>-<time>")
]
NumSamples = Annotated[int, typer.Option("--num-samples", help="Trials to run.")]
MaxConcurrent = Annotated[int, typer.Option("--max-concurrent", help="Trials at once.")]
CpusPerTrial = Annotated[float, typer.Option("--cpus-per-trial")]
GpusPerTrial = Annotated[
    float, typer.Option("--gpus-per-trial", help="Fractional packs trials on a GPU (0.25: four).")
]
Sampler = Annotated[str, typer.Option("--sampler", help=" | ".join(SAMPLERS) + ".")]
Scheduler = Annotated[str, typer.Option("--scheduler", help=SCHEDULER_HELP + ".")]
Trainable = Annotated[
    str, typer.Option("--trainable", help=f"{' | '.join(TRAINABLES)}, or {FORMS}.")
]
Metric = Annotated[str, typer.Option("--metric", help="Metric to optimize.")]
Mode = Annotated[
    str | None, typer.Option("--mode", help="min | max.", show_default="the metric's own direction")
]
TimeBudget = Annotated[
    float | None,
    typer.Option(
        "--time-budget", help="Stop the search (running trials too) after this many seconds."
    ),
]
SamplerSeed = Annotated[int | None, typer.Option("--seed", help="Seed of the Optuna sampler.")]
SpaceOverrides = Annotated[
    list[str], typer.Option("--set", help="Override a fixed value of the space: --set key=value.")
]
MaxFailures = Annotated[int, typer.Option("--max-failures", help="Retries of a failed trial.")]
ReplicateTop = Annotated[
    int,
    typer.Option(
        "--replicate-top", help="At the end, retrain the top K configs on fresh seeds (0: off)."
    ),
]
Seeds = Annotated[int, typer.Option("--seeds", help="Fresh seeds per replicated config.")]
WarmStart = Annotated[
    list[str],
    typer.Option(
        "--warm-start",
        help="Run these configs first: an earlier sweep's top ones (its name or folder) or "
        "a config file (best.yaml). Repeatable.",
    ),
]
WarmStartTop = Annotated[
    int, typer.Option("--warm-start-top", help="Configs taken from each --warm-start sweep.")
]

# replicate, export, report
Top = Annotated[int, typer.Option("--top", help="How many of the top configs.")]
ExportFile = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="YAML file.", show_default="best.yaml in the sweep folder"),
]
Register = Annotated[
    str | None,
    typer.Option(
        "--register", help="Also register the best generator (a pyfunc model) as this name."
    ),
]
ReportFile = Annotated[
    Path | None,
    typer.Option(
        "-o", "--output", help="HTML file.", show_default="report.html in the sweep folder"
    ),
]
NoMlflow = Annotated[
    bool, typer.Option("--no-mlflow", help="Do not log the page to the sweep's MLflow parent run.")
]

# ui
Host = Annotated[str, typer.Option("--host")]
Port = Annotated[int, typer.Option("--port")]
