"""No secret in a tracking URI gets past gansweep: `redact` hides exactly the credentials
of a URI (as the real parsers read them), every way in refuses a URI that carries one,
and `gansweep ui` starts MLflow with no URI on its command line."""

import os
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from gansweep.platform.ui_server import BACKEND_STORE_URI_VAR, mlflow_ui
from gansweep.records.manifest import Manifest
from gansweep.records.store import (
    TrackingError,
    _store_refusal,
    check_tracking_store,
    redact,
    refuse_secrets,
    resolve_tracking_uri,
    scrub,
)

REDACTED = [
    # the password of the user info
    ("postgresql://u:pw-1@db/m", "postgresql://u:***@db/m"),
    ("https://sweeper:pw-2@mlflow.internal:5000", "https://sweeper:***@mlflow.internal:5000"),
    # a password in the query string, under any case, among other parameters
    ("postgresql://u@db/m?password=pw-3", "postgresql://u@db/m?password=***"),
    (
        "postgresql://u@db:5432/m?sslmode=require&PassWord=pw-4&sslpassword=pw-5&application_name=g",
        "postgresql://u@db:5432/m?sslmode=require&PassWord=***&sslpassword=***&application_name=g",
    ),
    (
        "mysql+pymysql://u@h/db?passwd=pw-6&charset=utf8",
        "mysql+pymysql://u@h/db?passwd=***&charset=utf8",
    ),
    # tokens and keys of web stores; the fragment is kept
    ("http://h:5000/?token=pw-7", "http://h:5000/?token=***"),
    (
        "https://u:pw-8@h/api?x=1&access_token=pw-9#top",
        "https://u:***@h/api?x=1&access_token=***#top",
    ),
    ("https://h/?Api-Key=pw-10&client_secret=pw-11", "https://h/?Api-Key=***&client_secret=***"),
    ("https://h/?X-Amz-Security-Token=pw-12", "https://h/?X-Amz-Security-Token=***"),
    # percent-encoded values and names; a value is hidden whole, as written
    ("postgresql://u:pw%40-13%2F@db/m", "postgresql://u:***@db/m"),
    ("http://h/?token=pw%2F14%3D%3D", "http://h/?token=***"),
    ("https://h/?pass%77ord=pw-15", "https://h/?pass%77ord=***"),
    # unencoded '@', '/', '?' in a database password: SQLAlchemy reads past them
    ("postgresql://u:pw@-16@db/m", "postgresql://u:***@db/m"),
    ("postgresql+psycopg2://u:pw/17?x@db/m", "postgresql+psycopg2://u:***@db/m"),
]
UNCHANGED = [
    "sqlite:///mlflow.db",
    "sqlite:////home/me/my runs/mlflow.db",
    "sqlite:////srv/u:pw@x/mlflow.db",  # a path, not user info
    "http://127.0.0.1:5000",
    "http://h:5000/path@x",  # '@' past the host: part of the path
    "https://sweeper@mlflow.internal:5000",  # a user name alone is no secret
    "postgresql://u@db/m?sslmode=require&sslkey=/k/client.key&passfile=/k/.pgpass",  # paths
    "postgresql://u:@db/m",  # an empty password
    "http://h/?token=",  # an empty value
    "http://h/?token",
    "http://h/?tokenizer=bpe&keyword=x",
    "databricks://profile:prefix",  # a profile and a secret scope's prefix: names
]


@pytest.mark.parametrize(("uri", "shown"), REDACTED)
def test_redact_hides_each_credential_and_keeps_every_other_byte(uri, shown):
    assert redact(uri) == shown
    assert redact(shown) == shown  # nothing left to hide


@pytest.mark.parametrize("uri", UNCHANGED)
def test_a_uri_without_a_secret_is_unchanged(uri):
    assert redact(uri) == uri
    refuse_secrets(uri)  # does not raise


@pytest.mark.parametrize("uri", [uri for uri, _ in REDACTED])
def test_no_password_the_real_parsers_read_survives(uri):
    """Read as the stores read them (SQLAlchemy for databases, RFC 3986 as requests does
    for the rest): the password they would send is nowhere in the redacted URI."""
    shown = redact(uri)
    database = not uri.startswith("http")
    password = make_url(uri).password if database else urlsplit(uri).password
    if password:
        assert password not in shown
    parsed = make_url(shown) if database else urlsplit(shown)
    assert parsed.password in (None, "***")


def test_scrub_hides_the_uri_and_its_secrets_in_any_text():
    uri = "postgresql://u@db/m?password=p%40ss-18"
    text = f"(psycopg2.OperationalError) connecting to {uri}: password 'p@ss-18' rejected"
    assert scrub(text, uri) == (
        "(psycopg2.OperationalError) connecting to postgresql://u@db/m?password=***: "
        "password '***' rejected"
    )


def test_a_store_refusal_quotes_no_secret():
    uri = "postgresql://u:pw-19@db/m"
    message = _store_refusal(uri, RuntimeError(f"could not connect to {uri}"))
    assert message == (
        "cannot use MLflow tracking store postgresql://u:***@db/m: "
        "could not connect to postgresql://u:***@db/m"
    )


@pytest.mark.parametrize(
    ("uri", "where"),
    [
        ("postgresql://u@db/m?password=pw-20", "PGPASSWORD or ~/.pgpass"),
        ("https://h/?token=pw-21", "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        ("http://u:pw-22@h", "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
    ],
)
def test_the_refusal_shows_the_redacted_uri_and_where_credentials_go(uri, where):
    with pytest.raises(TrackingError) as refused:
        refuse_secrets(uri)
    message = str(refused.value)
    assert message.startswith(f"tracking URI {redact(uri)} carries a secret")
    assert where in message
    assert "pw-2" not in message


def _manifest(uri: str, given: str | None = None) -> Manifest:
    return Manifest(
        name="old", sweep_dir="/sweeps/old", tracking_uri=uri, experiment_id="1",
        parent_run_id="p", study_name="old", space="quick", space_source="",
        options={"tracking_uri": given},
    )  # fmt: skip


SECRET_URI = "postgresql://u@db/m?sslpassword=pw-23"
WAYS_IN = {
    "resolve_tracking_uri": lambda: resolve_tracking_uri(SECRET_URI),
    "check_tracking_store": lambda: check_tracking_store(SECRET_URI),
    "Manifest.tracking_uri": lambda: _manifest(SECRET_URI),
    "Manifest.options": lambda: _manifest("sqlite:////sweeps/mlflow.db", SECRET_URI),
}


@pytest.mark.parametrize("way_in", WAYS_IN.values(), ids=WAYS_IN.keys())
def test_every_way_in_refuses_a_uri_with_a_secret(way_in):
    """The URI given on the command line, and the one a manifest recorded (an older
    gansweep wrote one with a secret in its query string)."""
    with pytest.raises(TrackingError, match=r"sslpassword=\*\*\* carries a secret") as refused:
        way_in()
    assert "pw-23" not in str(refused.value)


def test_a_manifest_refusal_says_which_file_to_edit():
    with pytest.raises(TrackingError) as refused:
        _manifest(SECRET_URI)
    assert str(refused.value).startswith("sweep 'old': tracking URI")
    assert str(refused.value).endswith("(edit tracking_uri in /sweeps/old/gansweep.json)")


def test_a_unsupported_uri_with_a_secret_is_refused_for_its_secret_first():
    """Its "not supported" message would quote it whole."""
    with pytest.raises(TrackingError, match="carries a secret") as refused:
        resolve_tracking_uri("mongodb://u:pw-24@h/db")
    assert "pw-24" not in str(refused.value)


def test_ui_passes_the_store_to_mlflow_in_its_environment_not_its_argv(monkeypatch):
    """`ps` shows every user a command line; the store goes in MLflow's own variable,
    which the installed `mlflow ui` reads (parsed here by MLflow's real click command)."""
    import mlflow.cli

    uri = "postgresql://sweeps@db.internal/mlflow?sslmode=require"
    command, env = mlflow_ui(uri, "127.0.0.1", 5001)
    assert not [arg for arg in command if "db.internal" in arg or "postgresql" in arg]
    assert command[1:4] == ["-m", "mlflow", "ui"]
    assert env[BACKEND_STORE_URI_VAR] == uri
    assert env["PATH"] == os.environ["PATH"]  # the rest of our environment goes along

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ui = mlflow.cli.cli.get_command(None, "ui")  # an alias of `mlflow server`
    parsed = ui.make_context("ui", command[4:]).params
    assert (parsed["backend_store_uri"], parsed["host"], parsed["port"]) == (uri, "127.0.0.1", 5001)
