"""How the `gansweep` console script ends: as a normal exit does, without the
interpreter's teardown."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable

from gansweep.profiling import cprofiled


def run_then_exit(app: Callable[[], object]) -> None:
    """Run the command, then leave without the interpreter's teardown.

    After a command, Python spends 1.2-2.3 s (measured) freeing the modules of torch, Ray
    and MLflow, which a user waits for and nothing needs. Everything a command writes is
    written by then: thread pools are stopped, the threads that are not daemons joined
    and the exit handlers (MLflow's, Ray's and logging's flushes among them) run, as in
    a normal exit; then the process ends. An unexpected exception still ends the normal
    way, with its traceback.
    """
    try:
        with cprofiled():  # only where GANSWEEP_CPROFILE asks (profiling.py)
            app()
        code: int | str | None = 0
    except SystemExit as done:  # typer ends every command with one
        code = done.code
    # The interpreter's own first steps at exit, in its order: stop the thread pools
    # (their workers are not daemons: joined before they are told to stop, they wait
    # forever), join the threads that are not daemons, run the exit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    if isinstance(code, str):  # what sys.exit("message") does
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
