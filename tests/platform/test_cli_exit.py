"""The console script's exit (cli.main): the exit code of the command, its output whole,
and no hang on the thread pools that libraries leave behind (MLflow's artifact uploads
keep an idle worker thread that is not a daemon)."""

import subprocess
import sys
import textwrap

import pytest

MAIN_WITH_AN_IDLE_POOL = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from gansweep.platform.cli import main

    pool = ThreadPoolExecutor(1)
    pool.submit(print, "pool used").result()  # its worker now waits for more work
    sys.argv = ["gansweep", *sys.argv[1:]]
    main()
    """
)


@pytest.mark.parametrize(
    "args, code, says",
    [
        (["spaces"], 0, "quick"),
        (["sweep", "--space", "nope"], 2, "unknown search space 'nope'"),
    ],
)
def test_main_exits_with_the_commands_code_beside_an_idle_thread_pool(args, code, says):
    proc = subprocess.run(
        [sys.executable, "-c", MAIN_WITH_AN_IDLE_POOL, *args],
        capture_output=True,
        text=True,
        timeout=120,  # the old exit joined the pool's worker before stopping it: forever
    )
    assert proc.returncode == code, proc.stderr
    assert says in proc.stdout + proc.stderr
    assert proc.stdout.startswith("pool used")
    assert "Traceback" not in proc.stderr
