"""Which MLflow tracking store a sweep records into, whether it can be used, and retrying
the calls to it. The run format itself is in run_format.py; writing and reading runs in
write.py and read.py."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, unquote_plus, urlparse

# No MLflow or requests at import: the manifest imports this module to refuse a URI with
# a secret, and the CLI loads manifests before any heavy import (`--help` stays quick).

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
# MLflow error codes that the same call will get again: retrying only delays the error.
FINAL_ERRORS = (
    "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS",
    "UNAUTHENTICATED", "PERMISSION_DENIED",
)  # fmt: skip


class TrackingError(RuntimeError):
    """The tracking store cannot be used (bad URI, server not answering, no credentials)."""


HIDDEN = "***"
# Query parameters whose value is a credential. Matched case-insensitively on the decoded
# name with '-' read as '_': these names, and every name ending in one of the suffixes
# (password, sslpassword, db_password; token, access_token, x-amz-security-token;
# client_secret; api_key, access_key; signature, x-amz-signature). Not `sslkey`,
# `sslcert` or `passfile`: libpq reads those as paths to files, not secrets.
SECRET_NAMES = frozenset({"pwd", "key", "apikey", "sig"})
SECRET_SUFFIXES = ("password", "passwd", "token", "secret", "_key", "signature")
# Where a store's credentials go instead of its URI (the standard places its client reads).
CREDENTIALS_GO_TO = {
    "http": "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)",
    "postgresql": "PGPASSWORD or ~/.pgpass",
    "databricks": "a Databricks profile (~/.databrickscfg) or DATABRICKS_TOKEN",
}
# The schemes SQLAlchemy opens (with or without a "+driver"); it reads their user info
# its own way (below). Every other scheme is read as RFC 3986 says (requests does).
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql", "sqlite", "oracle")
# SQLAlchemy's reading of a database URI's user info (sqlalchemy.engine.url._parse_url):
# its password runs to the first '@', over any unencoded '/', '?' or '#'.
_DATABASE_USERINFO = re.compile(r"[^:/]*:(?P<password>[^@]*)@")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter of this (raw, possibly percent-encoded) name holds a
    credential; see SECRET_NAMES."""
    name = unquote_plus(name).lower().replace("-", "_")
    return name in SECRET_NAMES or name.endswith(SECRET_SUFFIXES)


def _redact(uri: str) -> tuple[str, list[str]]:
    """`uri` with its secrets replaced by HIDDEN, and the secrets (as written in `uri`)."""
    head, sep, rest = uri.partition("://")
    if not sep:  # no authority (sqlite:relative.db, a bare path): only a query to read
        head, rest = "", uri
    database = head.split("+")[0].lower() in DATABASE_SCHEMES
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    at = rest.rfind("@", 0, min(ends, default=len(rest)))  # RFC 3986: the netloc's last '@'
    found = _DATABASE_USERINFO.match(rest) if database else None
    if found:  # SQLAlchemy's password may run further; hide the longer of the two
        at = max(at, found.end() - 1)
    userinfo, tail = rest[: at + 1], rest[at + 1 :]
    hidden = []
    user, _, password = userinfo.removesuffix("@").partition(":")
    if password:
        hidden.append(password)
        userinfo = f"{user}:{HIDDEN}@"
    before, question, query = tail.partition("?")
    hash_, fragment = "", ""
    if not database:  # SQLAlchemy reads all after '?' as the query; RFC 3986 ends it at '#'
        query, hash_, fragment = query.partition("#")
    params = []
    for param in query.split("&"):
        name, _, value = param.partition("=")
        if value and is_secret_name(name):
            hidden.append(value)
            param = f"{name}={HIDDEN}"
        params.append(param)
    shown = head + sep + userinfo + before + question + "&".join(params) + hash_ + fragment
    return shown, hidden


def redact(uri: str) -> str:
    """`uri` with every credential in it replaced by ``***``: the password of its user
    info and the value of each query parameter named as a secret (SECRET_NAMES), e.g.
    ``postgresql://u@db/m?password=***``. All else is kept byte for byte, so the URI
    still names its store and says where the secret was, and a URI carries a secret
    exactly when ``redact(uri) != uri``.

    User names are kept (they identify, they do not authenticate). The password is
    read as RFC 3986 reads it (to the last '@' before the host) and, for database
    schemes, also as SQLAlchemy does (to the first '@', over an unencoded '/', '?' or
    '#'): whichever reading hides more wins, as a password written unencoded is still
    a password.
    """
    return _redact(uri)[0]


def scrub(text: str, uri: str) -> str:
    """`text` with `uri` shown redacted and every secret it carries hidden, as written
    and percent-decoded: error messages of MLflow, SQLAlchemy or requests can quote the
    URI they were given, whole or in parts."""
    shown, hidden = _redact(uri)
    text = text.replace(uri, shown)
    for secret in hidden:
        for form in (secret, unquote(secret)):
            text = text.replace(form, HIDDEN)
    return text


def refuse_secrets(uri: str) -> None:
    """Raise TrackingError if `uri` carries a secret; the message shows it redacted and
    says where the credentials go instead.

    Credentials come from the environment only: the URI itself is written down (the
    sweep manifest, best.yaml, the report, MLflow) and shown (the console, `ps` of the
    MLflow UI), so a URI with a secret is refused rather than recorded. Every URI
    passes here: resolve_tracking_uri (given on the command line) and Manifest (read
    from a sweep folder).
    """
    shown = redact(uri)
    if shown == uri:
        return
    scheme = urlparse(uri).scheme.split("+")[0].lower()
    scheme = "http" if scheme == "https" else scheme
    where = CREDENTIALS_GO_TO.get(scheme, "the database driver's own configuration")
    raise TrackingError(
        f"tracking URI {shown} carries a secret (shown as {HIDDEN}): put the credentials "
        f"in {where} instead; gansweep records the URI and shows it"
    )


def resolve_tracking_uri(uri: str | None) -> str:
    """The tracking URI every process of the sweep uses, made independent of their cwd.

    None means ``sqlite:///mlflow.db`` in the working directory. A relative SQLite path is
    made absolute here on the driver: Ray runs each trial in its own folder. A URI
    with a secret is refused (refuse_secrets) before anything else looks at it: every
    command that takes --tracking-uri starts here.
    """
    uri = uri or f"sqlite:///{DEFAULT_DB}"
    refuse_secrets(uri)
    scheme = urlparse(uri).scheme
    if scheme == "sqlite":
        path = uri.removeprefix("sqlite:///")
        if path.startswith("/"):  # sqlite:////abs/path.db
            return uri
        return f"sqlite:///{(Path.cwd() / path).resolve()}"
    if scheme in ("http", "https", "postgresql", "mysql", "databricks"):
        return uri
    raise TrackingError(
        f"tracking URI {uri!r} is not supported; use sqlite:///FILE.db (the default, "
        f"sqlite:///{DEFAULT_DB}), an http(s):// MLflow server, or a database URI "
        "(postgresql://...). The ./mlruns file store is deprecated in MLflow 3."
    )


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for other stores."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def artifact_location_for(uri: str, experiment_name: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a SQLite file, absolute, so trials
    in other folders find it; a server decides for itself (None)."""
    db = sqlite_path(uri)
    return None if db is None else (db.parent / "mlartifacts" / experiment_name).as_uri()


def check_tracking_store(uri: str, timeout: float = 5.0, must_exist: bool = False) -> None:
    """Fail fast, before any trial or run exists, if the store does not answer or refuses us.

    Checking never creates a store: a SQLite file that does not exist yet is fine for a
    new sweep (the first run creates it) and an error where records are to be read
    (`must_exist`). Credentials come from the environment only: a URI that carries a
    secret is refused (refuse_secrets).
    """
    import requests  # deferred, like MLflow: this module loads with every manifest
    from mlflow import MlflowClient

    refuse_secrets(uri)
    if urlparse(uri).scheme in ("http", "https"):
        try:
            response = requests.get(uri.rstrip("/") + "/health", timeout=timeout)
        except requests.RequestException as err:
            raise TrackingError(f"MLflow tracking server {uri} does not answer: {err}") from None
        if response.status_code != 200:
            raise TrackingError(
                f"MLflow tracking server {uri} answered /health with {response.status_code}"
            )
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        if must_exist:
            raise TrackingError(f"tracking store {uri} does not exist")
        if not db.parent.is_dir():
            raise TrackingError(f"folder {db.parent} of tracking store {uri} does not exist")
        return
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # auth errors, bad databases, ...: all mean "cannot log there"
        raise TrackingError(_store_refusal(uri, err)) from None


def _store_refusal(uri: str, err: Exception) -> str:
    """Why the store refused us, in words that say what to do (no traceback, no secret:
    the error's text goes through `scrub`, for SQLAlchemy quotes the URL it opened)."""
    return scrub(_refusal_words(uri, err), uri)


def _refusal_words(uri: str, err: Exception) -> str:
    code = getattr(err, "error_code", None)
    if code == "UNAUTHENTICATED":
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if user and os.environ.get("MLFLOW_TRACKING_PASSWORD"):
            return (
                f"MLflow tracking server {uri} rejected the credentials of user {user!r} "
                "(authentication failed): check MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD"
            )
        return (
            f"MLflow tracking server {uri} needs credentials (authentication required): set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment"
        )
    if code == "PERMISSION_DENIED":
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "anonymous")
        return (
            f"MLflow tracking server {uri} denies user {user!r} access to experiments: ask its "
            "administrator for permission"
        )
    return f"cannot use MLflow tracking store {uri}: {err}"


def with_retries(action: Callable[[], T], attempts: int = 5, first_wait: float = 0.5) -> T:
    """Run a tracking call, retrying transient failures (a busy SQLite file, a server
    restarting) with exponential back-off; the last failure is raised.

    Only for calls that are safe to repeat: reading, setting tags, logging a batch of
    params or metrics. Creating a run is not: see write.TrialRun, which looks first.
    """
    for attempt in range(attempts):
        try:
            return action()
        except Exception as err:
            if attempt == attempts - 1 or getattr(err, "error_code", None) in FINAL_ERRORS:
                raise
            wait = first_wait * 2**attempt
            # Said out loud: a store that keeps failing should be noticed before it fails
            # a trial. One line (SQLAlchemy errors carry the whole statement).
            reason = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
            log.warning(
                "tracking call failed (%s); retrying in %.1f s, retry %d of %d",
                reason, wait, attempt + 1, attempts - 1,
            )  # fmt: skip
            time.sleep(wait)
    raise AssertionError("unreachable")
