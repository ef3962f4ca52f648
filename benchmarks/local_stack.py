"""The cluster's record stack on loopback, for tests and benchmarks: a real PostgreSQL
server and an `mlflow server` that keeps its runs in it, as
gansweep/platform/deploy/mlflow-compose.yaml runs them on a cluster, each in a temporary
folder of its own and on a free 127.0.0.1 port.

    with record_stack(folder, password="...") as (database, server):
        ...  # gansweep sweep --tracking-uri {server.url}; database.restart(), ...

Tests import it as ``local_stack`` (pyproject.toml puts benchmarks/ on pytest's path);
a benchmark run as ``python benchmarks/x.py`` has this folder on its path already. It
needs PostgreSQL's server programs (initdb, pg_ctl; Debian's ``postgresql`` package)
and SQLAlchemy's PostgreSQL driver in this Python (the ``postgres`` extra). Where
initdb is missing, ``postgres_bin_dir()`` is None and ``MISSING_POSTGRES`` says why.

Only the standard library and requests: benchmarks and tests alike can use it without
pytest, and nothing of gansweep is imported.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

import requests

SERVER_START_DEADLINE = 300.0  # seconds; mlflow's imports are slow on busy shared cores
POSTGRES_START_DEADLINE = 120  # seconds pg_ctl waits for the server to accept connections
STOP_GRACE = 30.0  # seconds a server gets to stop on SIGTERM before SIGKILL
# Where Debian's and Ubuntu's `postgresql` package puts the server programs, one folder
# per major version; they are not on PATH there (only the client programs are).
DEBIAN_POSTGRES = Path("/usr/lib/postgresql")
MISSING_POSTGRES = (
    "PostgreSQL's server programs (initdb, pg_ctl) are neither on PATH nor in "
    f"{DEBIAN_POSTGRES}/<version>/bin: install them (Debian: apt-get install postgresql)"
)
# initdb and pg_ctl refuse to run as root; run as root, the server runs as this user
# (Debian's package creates `postgres`), or `nobody` where it does not exist.
SERVER_USER_VARIABLE = "GANSWEEP_PG_OS_USER"


class StackError(RuntimeError):
    """A server of the stack did not start or stop; the message ends with its log."""


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl: PATH's, else the newest version of Debian's
    package folder; None where neither has them."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        # The folder of the real program: /usr/local/bin's initdb may be a link to
        # Debian's, whose pg_ctl finds `postgres` beside itself only in its own folder.
        return Path(on_path).resolve().parent
    versions = sorted(
        (p for p in DEBIAN_POSTGRES.glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0],
    )
    return versions[-1] if versions else None


def _tail(path: Path, chars: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.is_file() else "(no log written)"
    return f"--- the end of {path}:\n{text[-chars:]}"


def session_processes(sid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live process in session `sid` (zombies are dead): a
    command started with start_new_session and all it started, Ray's processes included,
    which sit in process groups of their own."""
    listing = subprocess.run(
        ["ps", "-e", "-o", "pid=,sid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in listing.splitlines():
        pid, process_sid, stat, *args = line.split(None, 3)
        if int(process_sid) == sid and not stat.startswith("Z"):
            found.append((int(pid), args[0] if args else ""))
    return found


def kill_session(sid: int, timeout: float = 30.0) -> list[tuple[int, str]]:
    """SIGKILL every process of session `sid` at once, as a reboot would, until none is
    left; returns what was killed. Raises StackError if some survive `timeout` s."""
    killed: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while processes := session_processes(sid):
        if time.monotonic() > deadline:
            raise StackError(f"processes of session {sid} survived SIGKILL: {processes}")
        for pid, args in processes:
            killed.setdefault(pid, args)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return sorted(killed.items())


def group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (zombies are dead: a process whose
    parent has not reaped it yet still answers kill(0), so killpg cannot tell)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone while we looked
        if int(group) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def processes_in(folder: Path) -> list[int]:
    """The live processes whose working folder is `folder` or inside it (also after
    the folder was deleted: the kernel then names it "<folder> (deleted)")."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            where = os.readlink(cwd)
            state = (cwd.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone while we looked, or not ours to see
        if (where == str(folder) or where.startswith(f"{folder}/")) and state != "Z":
            found.append(int(cwd.parent.name))
    return found


def stop_group(
    pgid: int, process: subprocess.Popen | None = None, grace: float = STOP_GRACE
) -> None:
    """SIGTERM to process group `pgid`, then SIGKILL to whatever is left after `grace`
    seconds, until none of it is left. MLflow's uvicorn workers live in the server's
    group: stopping only the process started leaves them holding the port. As
    gansweep/platform/ui_server.py stops the UI."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while group_members(pgid) and time.monotonic() < deadline:
            if process is not None:
                process.poll()  # reap our child, the group's leader
            time.sleep(0.1)
        if not group_members(pgid):
            break
    if process is not None:
        process.wait(timeout=grace)
    if left := group_members(pgid):
        raise StackError(f"processes {left} of group {pgid} survived SIGKILL")


# ------------------------------------------------------------------------ PostgreSQL


class Postgres:
    """A PostgreSQL server of its own: a new cluster (initdb) in a temporary folder,
    listening on 127.0.0.1 only, on a free port, with its Unix socket in that folder too
    (so it touches no system-wide socket folder and no other server's files).

    Without `password`, loopback connections are trusted (this server is a throwaway
    that listens on loopback only). With one, they need it, as a cluster's database
    does; `env` gives it to libpq's clients as PGPASSWORD, never in `uri`: gansweep
    refuses tracking URIs that carry passwords.

    Run as root, the server programs run as an unprivileged user (initdb and pg_ctl
    refuse root): `postgres`, or `nobody`, or $GANSWEEP_PG_OS_USER. The temporary folder
    is then theirs, so it must be made where they can reach it: `parent` defaults to the
    system's temporary folder (pytest's tmp_path, private to root, would not do).
    """

    def __init__(
        self,
        *,
        database: str = "gansweep",
        user: str = "gansweep",
        password: str | None = None,
        parent: Path | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        found = bin_dir or postgres_bin_dir()
        if found is None:
            raise StackError(MISSING_POSTGRES)
        self.bin_dir = found
        self.database, self.user, self.password = database, user, password
        self.parent = parent
        self.folder: Path | None = None  # made by start()
        self.port = 0
        self._server_user = _server_user()

    # -- where it is

    @property
    def uri(self) -> str:
        """The database's URI for SQLAlchemy (MLflow's --backend-store-uri): no password."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def env(self) -> dict[str, str]:
        """What a client's environment needs besides `uri`: the password, if any."""
        return {"PGPASSWORD": self.password} if self.password is not None else {}

    @property
    def data_dir(self) -> Path:
        assert self.folder is not None, "not started"
        return self.folder / "data"

    @property
    def log(self) -> Path:
        assert self.folder is not None, "not started"
        return self.folder / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (its postmaster.pid file's first line)."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    # -- life

    def start(self) -> Postgres:
        """Create the cluster and the database on the first call; start the server and
        wait until it accepts connections."""
        if self.folder is None:
            self._create()
            self._run_server_program("pg_ctl", "start")
            self._create_database()
        else:
            self._run_server_program("pg_ctl", "start")
        return self

    def restart(self) -> None:
        """Stop the server (a fast shutdown: clients are disconnected) and start it again
        on the same port with the same data."""
        self._stop_server()
        self._run_server_program("pg_ctl", "start")

    def stop(self) -> None:
        """Stop the server, leave none of its processes, and delete its folder."""
        if self.folder is None:
            return
        try:
            self._stop_server()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> Postgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the steps

    def _create(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="gansweep-pg-", dir=self.parent))
        self.port = free_port()
        if self._server_user is not None:
            os.chown(self.folder, self._server_user.pw_uid, self._server_user.pw_gid)
        args = [
            "-D", str(self.data_dir), "-U", self.user, "--locale=C", "--encoding=UTF8",
            # Connections over the socket in our own folder are trusted (only the server's
            # user can reach it); TCP ones need the password when there is one.
            "--auth-local=trust",
            "--auth-host=" + ("scram-sha-256" if self.password is not None else "trust"),
            # The cluster is thrown away with the folder: no need to wait for the disk.
            "--no-sync",
        ]  # fmt: skip
        if self.password is not None:
            password_file = self.folder / "password"
            password_file.write_text(self.password)
            if self._server_user is not None:
                os.chown(password_file, self._server_user.pw_uid, self._server_user.pw_gid)
            args.append(f"--pwfile={password_file}")
        try:
            self._run_server_program("initdb", *args)
        finally:
            if self.password is not None:
                password_file.unlink()
        # Here rather than in pg_ctl's -o, so restart() and a manual pg_ctl see them too.
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# local_stack.py: loopback only, a free port, the socket in our folder\n"
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.folder}'\n"
            )

    def _create_database(self) -> None:
        """CREATE DATABASE over the socket (trusted), as the cluster's superuser."""
        assert self.folder is not None
        self._run_server_program(
            "createdb", "-h", str(self.folder), "-p", str(self.port), "-U", self.user,
            self.database,
        )  # fmt: skip

    def processes(self) -> list[int]:
        """The server's live processes: the postmaster and its backends."""
        assert self.folder is not None, "not started"
        return processes_in(self.folder)

    def _stop_server(self) -> None:
        if self.pid is None:
            return
        try:
            self._run_server_program("pg_ctl", "stop")
        finally:
            # What a failed stop left. Each backend is a session of its own (PostgreSQL
            # makes them group leaders), so no killpg reaches them all; their working
            # folder, the data folder, finds them.
            deadline = time.monotonic() + STOP_GRACE
            while left := self.processes():
                if time.monotonic() > deadline:
                    raise StackError(f"PostgreSQL processes {left} survived SIGKILL")
                for pid in left:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.1)

    def _run_server_program(self, program: str, *args: str) -> None:
        assert self.folder is not None
        if program == "pg_ctl":
            action, *_ = args
            args = (
                "-D", str(self.data_dir), "-l", str(self.log), "-w",
                "-t", str(POSTGRES_START_DEADLINE), *(["-m", "fast"] if action == "stop" else []),
                action,
            )  # fmt: skip
        user = self._server_user
        # libpq's variables of the caller (PGHOST, PGPORT, ...) must not redirect these.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if user is not None:
            env.update(HOME=str(self.folder), USER=user.pw_name, LOGNAME=user.pw_name)
        done = subprocess.run(
            [str(self.bin_dir / program), *args], cwd=self.folder, env=env,
            capture_output=True, text=True, timeout=POSTGRES_START_DEADLINE + 60,
            # As that user, without root's supplementary groups; None: as ourselves.
            user=user and user.pw_uid, group=user and user.pw_gid,
            extra_groups=None if user is None else [],
        )  # fmt: skip
        if done.returncode != 0:
            raise StackError(
                f"{program} {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}\n{_tail(self.log)}"
            )


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server programs: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    names = [os.environ.get(SERVER_USER_VARIABLE), "postgres", "nobody"]
    for name in filter(None, names):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise StackError(
        f"run as root, PostgreSQL needs an unprivileged user to run as: none of {names} "
        f"exists; set {SERVER_USER_VARIABLE}"
    )


# ---------------------------------------------------------------------- MLflow server


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 with proxied artifacts (--serve-artifacts)
    kept in `folder`/artifacts, in a process group of its own so that stop() reaches
    its uvicorn workers. restart() serves the same stores on the same port again.

    `backend_store_uri`: where it keeps runs (a Postgres' `uri`, or sqlite:///...).
    `env`: the server's environment (default: this process's), plus `extra_env` (a
    Postgres' `env`, with its password). `extra_args` go to `mlflow server` as they are
    (--app-name basic-auth, ...).
    """

    def __init__(
        self,
        backend_store_uri: str,
        folder: Path,
        *,
        workers: int = 1,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        start_deadline: float = SERVER_START_DEADLINE,
    ) -> None:
        self.backend_store_uri = backend_store_uri
        self.folder = folder
        self.workers = workers
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.env = {
            # The GenAI job runner (huey consumers) is not needed to track runs and
            # doubles the server's start-up time on a busy machine.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            **(os.environ if env is None else env),
            **(extra_env or {}),
        }
        self.start_deadline = start_deadline
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def artifacts(self) -> Path:
        """The server's --artifacts-destination."""
        return self.folder / "artifacts"

    @property
    def log(self) -> Path:
        """What the server printed, every start appended."""
        return self.folder / "mlflow-server.log"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(self.workers),
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", str(self.artifacts), "--serve-artifacts",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> MlflowServer:
        """Start the server and wait until /health answers (its first start on a new
        database also creates MLflow's tables there)."""
        assert self.process is None, "already running"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log.open("a") as out:
            out.write(f"\n--- local_stack.py: start {self.starts}\n")
            out.flush()
            self.process = subprocess.Popen(
                self.command(), cwd=self.folder, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.start_deadline
        while not self.healthy():
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise StackError(f"mlflow server exited with {code}:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise StackError(
                    f"mlflow server not healthy after {self.start_deadline:.0f} s:\n"
                    f"{_tail(self.log)}"
                )
            time.sleep(1)
        return self

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def restart(self) -> None:
        """Stop the server and start it again: same port, same stores."""
        self.stop()
        self.start()

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL what is left; none of it remains."""
        if self.process is not None:
            process, self.process = self.process, None
            stop_group(process.pid, process)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def record_stack(
    folder: Path, *, workers: int = 1, password: str | None = None
) -> Iterator[tuple[Postgres, MlflowServer]]:
    """PostgreSQL and an `mlflow server` on it (artifacts and logs in `folder`), both
    stopped at the end, whatever happens."""
    with (
        Postgres(password=password) as database,
        MlflowServer(database.uri, folder, workers=workers, extra_env=database.env) as server,
    ):
        yield database, server
