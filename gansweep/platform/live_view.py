"""What a person sees of a sweep: a progress line and a table of the running and best
trials (rich), drawn from records.progress; updated in place while a sweep runs, printed
once by `gansweep status`.

While a sweep runs, everything Ray, Tune and MLflow print (Tune's status tables, the
workers' output forwarded by Ray, database set-up lines, the traceback of a trial the
scheduler stops) goes to ``driver.log`` in the sweep folder: the process's stdout and
stderr file descriptors point there, so output from C++ and from other threads is caught
too, and the view writes to the terminal through a copy of the original descriptor. In a
terminal that is not interactive (CI, a log file) the view prints one line per trial
event instead of redrawing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gansweep.profiling import CallLog
from gansweep.records.manifest import LOG_FILE, Manifest, SweepNotFoundError
from gansweep.records.progress import SweepProgress, progress

POLL_S = 2.0  # how often the running view reads the records, at most
# ... and at least: every read of the records costs the driver ~45 ms of CPU at 16 trials,
# more as a sweep grows, and the trials share the machine with it. The view waits long
# enough that reading stays under this share of one core.
POLL_CPU_SHARE = 0.01
# The view is at most this old. At 10 s, a sweep of 2,000 runs on SQLite (1.6 s of CPU a
# poll) spent a fifth of the driver's core on its view, while the driver set the sweep's
# pace (docs/results.md, "The driver at scale"); at 60 s that is under 3 %.
POLL_MAX_S = 60.0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _value(value: float) -> str:
    return "–" if value != value else f"{value:.4g}"


def summary(p: SweepProgress) -> str:
    """The progress line."""
    parts = [
        f"{p.name}: {p.state}" + (f" ({p.note})" if p.note else ""),
        f"trials {p.done} done / {p.running} running / {p.pending} pending of {p.planned}",
    ]
    if p.replicas_planned:
        parts.append(f"replicas {p.replicas_done}/{p.replicas_planned}")
    parts.append(f"elapsed {_duration(p.elapsed_s)}")
    if p.state == "running":
        parts.append(f"left ~{_duration(p.eta_s)}")
    if p.best is not None:
        parts.append(f"best {p.metric} {_value(p.best['value'])} ({p.best['combination']})")
    return " | ".join(parts)


def table(p: SweepProgress) -> Table:
    view = Table(title=f"running and best trials ({p.metric}, {p.mode})", title_justify="left")
    for column in ("rank", "trial", "step", p.metric, "status"):
        view.add_column(column, justify="left" if column in ("trial", "status") else "right")
    for row in p.rows:
        rank = str(row.rank) if row.rank else ""
        step = f"{row.step}/{row.steps}"
        view.add_row(rank, row.name, step, _value(row.value), row.status)
    return view


def render(p: SweepProgress) -> Group:
    lines: list[RenderableType] = [Text(summary(p)), table(p)]
    if p.resume:
        lines.append(Text(f"continue it with: {p.resume}"))
    return Group(*lines)


class LiveView:
    """A thread that polls a running sweep's records and shows them: redrawn in place on
    an interactive terminal, one line per trial event otherwise. The sweep itself runs on
    the main thread; the view never touches Ray."""

    def __init__(self, storage: str, name: str, console: Console, interactive: bool) -> None:
        self.storage, self.name = storage, name
        self.console, self.interactive = console, interactive
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="gansweep-view", daemon=True)
        self.seen: dict[str, str] = {}  # run name -> status already reported
        self.live: Live | None = None
        # Each poll's cost, where GANSWEEP_PROFILE_CALLS asks (profiling.CallLog).
        self.calls = CallLog(Path(storage).expanduser().resolve() / name)

    def __enter__(self) -> LiveView:
        if self.interactive:
            # Not rich's default: Live would point sys.stdout and sys.stderr at the
            # terminal, above the view, for as long as it runs, and everything the
            # libraries print from Python (Tune's tables, the workers' lines that Ray
            # forwards, log records) would go around driver.log and flood the view.
            self.live = Live(
                console=self.console,
                auto_refresh=False,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        self._poll()  # the last events, once the sweep is done with its records
        if self.live is not None:
            self.live.stop()

    def _loop(self) -> None:
        wait = POLL_S
        while not self.stopping.wait(wait):
            began = time.thread_time()  # this thread's CPU: what the trials lose to it
            with self.calls.call("view_poll"):
                self._poll()
            wait = min(POLL_MAX_S, max(POLL_S, (time.thread_time() - began) / POLL_CPU_SHARE))

    def _poll(self) -> None:
        try:
            manifest = Manifest.load(self.storage, self.name)
            now = progress(manifest)
        except SweepNotFoundError:
            return  # the sweep is not started yet
        except Exception as err:  # a busy store: try again at the next poll
            self.console.print(f"(view: could not read the records: {err})", markup=False)
            return
        if self.live is not None:
            self.live.update(render(now), refresh=True)
        else:
            self._print_events(now)

    def _print_events(self, now: SweepProgress) -> None:
        """One line per trial or replica that ended since the last poll."""
        planned = {"trial": now.planned, "replica": now.replicas_planned}
        for row in now.ended:
            if self.seen.get(row.name) == row.status:
                continue
            # Numbered by the lines printed, not by the count at this poll: two trials
            # that end between two polls get two numbers.
            ended = sum(1 for r in now.ended if r.role == row.role and r.name in self.seen)
            ended += row.name not in self.seen
            self.seen[row.name] = row.status
            count = f"{ended}/{planned[row.role]} {row.role}s"
            self.console.print(
                f"[{count}] {row.name}: {row.status} at step {row.step}/{row.steps}, "
                f"{now.metric} {_value(row.value)}",
                markup=False,
                highlight=False,
                soft_wrap=True,  # one line, however narrow the log's assumed width
            )


@contextmanager
def quiet_libraries(sweep_dir: Path, verbose: bool) -> Iterator[IO[str]]:
    """Point this process's stdout and stderr at ``<sweep_dir>/driver.log`` (unless
    `verbose`); yields a text stream to the terminal for the view."""
    if verbose:
        yield sys.stdout
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with open(sweep_dir / LOG_FILE, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            # Ray's driver prints its workers' output from a thread, deduplicated lines
            # seconds later: disconnect first, so that none of it lands on the terminal.
            ray = sys.modules.get("ray")
            if ray is not None and ray.is_initialized():
                ray.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            terminal.close()


@contextmanager
def watching(storage: str, name: str, sweep_dir: Path, verbose: bool) -> Iterator[Console]:
    """The live view of sweep `name` around the block that runs it, with the libraries'
    output in the sweep folder's driver.log; yields the terminal's console (the block's
    own lines go there, not to the log)."""
    with quiet_libraries(sweep_dir, verbose) as terminal:
        console = Console(file=terminal)
        interactive = console.is_terminal and not verbose
        if not verbose:
            console.print(
                f"Ray, Tune and MLflow output: {sweep_dir / LOG_FILE} (--verbose shows it here)",
                markup=False,
                soft_wrap=True,
            )
        with LiveView(storage, name, console, interactive):
            yield console
