"""The cluster files in gansweep/platform/deploy/ parse, carry what their tools require,
hold no secret, ship with the package, and every `gansweep ...` command written in them
(and in the README's cluster section) is one the real CLI accepts. Nothing is run."""

import configparser
import fnmatch
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import typer
import yaml

import gansweep.platform
from gansweep.platform.cli import app

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer uses click itself
    from click.exceptions import UsageError

DEPLOY = Path(gansweep.platform.__file__).parent / "deploy"
ROOT = Path(__file__).resolve().parents[2]
LAUNCHER, RAYJOB, COMPOSE, AUTH_INI = (
    "ray-cluster.yaml", "rayjob.yaml", "mlflow-compose.yaml", "basic_auth.ini",
)  # fmt: skip
YAML_FILES = (LAUNCHER, RAYJOB, COMPOSE)
SHARED = "/shared"  # where every node mounts the shared file system


def docs(name: str) -> list:
    """Every YAML document of a deploy file (rayjob.yaml holds the volume claim too)."""
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]


def doc(name: str) -> dict:
    (only,) = docs(name)
    return only


def rayjob_parts() -> tuple[dict, dict[str, dict]]:
    """(the RayJob, {claim name: PersistentVolumeClaim})."""
    parts = docs(RAYJOB)
    (job,) = [d for d in parts if d.get("kind") == "RayJob"]
    claims = {d["metadata"]["name"]: d for d in parts if d.get("kind") == "PersistentVolumeClaim"}
    return job, claims


# ------------------------------------------------------------- `gansweep` command lines

SHELL_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", "--"}  # `--`: ray job submit -- CMD
COMMAND_PREFIXES = {"exec", "then", "do", "time", "nohup", "env"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined."""
    lines, pending = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            lines.append(pending + line)
            pending = ""
    return [*lines, pending] if pending else lines


def gansweep_commands(line: str) -> list[list[str]]:
    """The argument lists of every `gansweep` invoked in one shell line: at a command
    position (first word, after an operator, `--` or VAR=value assignments), or inside a
    quoted command such as `ray exec CLUSTER "gansweep export ..."`."""
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:  # prose with an apostrophe, not a command
        return []
    found: list[list[str]] = []
    at_start = True
    for i, token in enumerate(tokens):
        if " " in token:
            found += gansweep_commands(token)
        if at_start and Path(token).name == "gansweep":
            args = []
            for arg in tokens[i + 1 :]:
                if arg in SHELL_SEPARATORS:
                    break
                args.append(arg)
            found.append(args)
        at_start = (
            token in SHELL_SEPARATORS
            or token in COMMAND_PREFIXES
            or (at_start and bool(ASSIGNMENT.match(token)))
        )
    return found


def yaml_strings(node) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from yaml_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from yaml_strings(value)


def comment_text(text: str) -> str:
    """The comment lines of a YAML or INI file, without their '#'."""
    return "\n".join(line.strip()[1:] for line in text.splitlines() if line.strip().startswith("#"))


def code_blocks(markdown: str) -> str:
    """The code blocks of a Markdown text (also those indented inside list items)."""
    blocks = re.findall(r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```", markdown, flags=re.M | re.S)
    return "\n".join(blocks)


def readme_cluster_section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Running on a cluster\n(.*?)(?=^## )", text, flags=re.M | re.S)
    assert match, "README.md has no '## Running on a cluster' section"
    return match.group(1)


def commands_in(source: str) -> list[list[str]]:
    """Every gansweep command in a deploy file (values and comments) or a README."""
    if source == "README.md#cluster":
        texts = [code_blocks(readme_cluster_section())]
    elif source.endswith(".md"):
        texts = [code_blocks((DEPLOY / source).read_text())]
    else:
        raw = (DEPLOY / source).read_text()
        texts = [comment_text(raw)]
        if source.endswith(".yaml"):
            # A value with a space may be a command line; a lone word is a name.
            texts += [text for text in yaml_strings(docs(source)) if " " in text.strip()]
    return [
        cmd for text in texts for line in logical_lines(text) for cmd in gansweep_commands(line)
    ]


def parse_cli(args: list[str]) -> typer.Context:
    """Parse `gansweep ARGS` with the real CLI (strictly: an unknown option or a bad value
    raises UsageError); run nothing."""
    root = typer.main.get_command(app)
    assert args, "a bare `gansweep`"
    assert args[0] in root.commands, f"no gansweep command {args[0]!r}: {sorted(root.commands)}"
    parent = root.make_context("gansweep", [args[0]], resilient_parsing=False)
    command = root.get_command(parent, args[0])
    return command.make_context(args[0], list(args[1:]), parent=parent, resilient_parsing=False)


# Where each file must show how to run a sweep (and what else it shows).
EXPECTED_COMMANDS = {
    LAUNCHER: {"sweep", "export"},
    RAYJOB: {"sweep", "resume"},
    "README.md": {"sweep"},
    "README.md#cluster": {"sweep", "resume", "export"},
}


@pytest.mark.parametrize("source", sorted(EXPECTED_COMMANDS))
def test_every_gansweep_command_parses_with_the_real_cli(source):
    commands = commands_in(source)
    assert {args[0] for args in commands if args} >= EXPECTED_COMMANDS[source], commands
    for args in commands:
        try:
            parse_cli(args)
        except UsageError as err:  # NoSuchOption, BadParameter, MissingParameter...
            pytest.fail(f"{source}: `gansweep {shlex.join(args)}` is refused: {err}")


@pytest.mark.parametrize("source", sorted(set(EXPECTED_COMMANDS) - {"README.md"}))
def test_cluster_sweeps_use_shared_storage_a_server_and_the_cluster(source):
    sweeps = [parse_cli(args).params for args in commands_in(source) if args[0] == "sweep"]
    on_cluster = [params for params in sweeps if params["address"]]
    assert on_cluster
    if source != "README.md#cluster":  # the README also has a laptop sweep against the server
        assert on_cluster == sweeps
    for params in sweeps:
        assert urlparse(params["tracking_uri"]).scheme in ("http", "https"), params
    for params in on_cluster:
        assert params["storage"].startswith(SHARED + "/"), params
        assert params["address"] == "auto", params


def test_the_command_checker_refuses_what_the_cli_refuses():
    assert (
        parse_cli(["sweep", "--num-samples", "4", "--set", "steps=10"]).params["num_samples"] == 4
    )
    for bad in (["sweep", "--bogus"], ["sweep", "--num-samples", "many"], ["resume"]):
        with pytest.raises(UsageError):
            parse_cli(bad)
    with pytest.raises(AssertionError, match="no gansweep command 'swep'"):
        parse_cli(["swep"])
    line = 'A=1 ray job submit -- gansweep sweep --name x && ray exec c "gansweep export x -o b"'
    assert gansweep_commands(line) == [["sweep", "--name", "x"], ["export", "x", "-o", "b"]]
    assert gansweep_commands("pip install gansweep torch") == []


# -------------------------------------------------------------------------- no secrets

SECRET_KEY = re.compile(r"password|secret|token|access_key", re.I)
PLACEHOLDER = re.compile(
    r"""^["']?(\$\$?\{?[A-Za-z_][A-Za-z0-9_]*(:?[?-][^}]*)?\}?|%s|<[^>]*>|change-me|\.\.\.)["']?$"""
)
SHELL_SECRET = re.compile(r"\b([\w.-]*(?:password|secret|token)[\w.-]*)=([\"']?[^\s\"'\\;]*)", re.I)
URI_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@", re.I)


def literal_secrets(node, path: str = "") -> Iterator[str]:
    """Secret-looking values that are not references: a key named like a password with a
    literal string, a Kubernetes env var named so with a literal `value`, NAME=literal in a
    command, a URI with user:password@."""
    if isinstance(node, dict):
        name = str(node.get("name", ""))
        if SECRET_KEY.search(name) and isinstance(node.get("value"), str):
            if not PLACEHOLDER.match(node["value"]):
                yield f"{path}: env {name} = {node['value']!r}"
        for key, value in node.items():
            named = "/" not in str(key)  # a file path (file_mounts) is not a variable name
            if named and SECRET_KEY.search(str(key)) and isinstance(value, (str, int)):
                if not PLACEHOLDER.match(str(value)):
                    yield f"{path}.{key} = {value!r}"
            yield from literal_secrets(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from literal_secrets(value, f"{path}[{i}]")
    elif isinstance(node, str):
        for line in node.splitlines():
            for key, value in SHELL_SECRET.findall(line):
                if not PLACEHOLDER.match(value):
                    yield f"{path}: {key}={value}"
            for password in URI_PASSWORD.findall(line):
                if not PLACEHOLDER.match(password):
                    yield f"{path}: a URI with a password in {line.strip()!r}"


def test_the_secret_rule_catches_literals_and_allows_references():
    caught = {
        "POSTGRES_PASSWORD": "hunter2",
        "env": [{"name": "MLFLOW_TRACKING_PASSWORD", "value": "hunter2"}],
        "command": "MLFLOW_TRACKING_PASSWORD=hunter2 gansweep sweep",
        "uri": "postgresql://mlflow:hunter2@db/mlflow",
    }
    assert len(list(literal_secrets(caught))) == 4
    allowed = {
        "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set it}",
        "MINIO_ROOT_PASSWORD": "$MINIO_ROOT_PASSWORD",
        "admin_password": "change-me",
        "env": [{"name": "MLFLOW_TRACKING_PASSWORD", "valueFrom": {"secretKeyRef": {}}}],
        "command": 'kubectl create secret --from-literal=password="$MLFLOW_TRACKING_PASSWORD"',
    }
    assert list(literal_secrets(allowed)) == []


@pytest.mark.parametrize("name", YAML_FILES)
def test_no_yaml_file_holds_a_secret(name):
    raw = (DEPLOY / name).read_text()
    found = list(literal_secrets(docs(name), name)) + list(literal_secrets(comment_text(raw)))
    assert found == []


def test_the_auth_config_holds_no_password():
    config = configparser.ConfigParser()
    config.read(DEPLOY / AUTH_INI)
    for key, value in config["mlflow"].items():
        if SECRET_KEY.search(key):
            assert value == "" or PLACEHOLDER.match(value), f"{key} = {value!r}"
    assert urlparse(config["mlflow"]["database_uri"]).password is None


def test_the_deploy_files_ship_with_the_package():
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["gansweep"]
    for path in DEPLOY.iterdir():
        relative = path.relative_to(DEPLOY.parents[1]).as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), f"{relative} is not shipped"


# ------------------------------------------------------------------ Ray cluster launcher


def test_the_launcher_config_passes_rays_own_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = doc(LAUNCHER)
    for key in (
        "cluster_name", "provider", "auth", "available_node_types", "head_node_type",
        "file_mounts", "setup_commands", "head_start_ray_commands", "worker_start_ray_commands",
    ):  # fmt: skip
        assert key in config, key
    assert config["provider"]["type"] in ("aws", "gcp")
    assert config["head_node_type"] in config["available_node_types"]
    validate_config(prepare_config(config))  # the schema check `ray up` runs first


def test_every_launcher_node_installs_gansweep_and_mounts_the_shared_storage():
    config = doc(LAUNCHER)
    setup = "\n".join(config["setup_commands"])  # on every node, head and workers
    assert re.search(r"pip install .*\btorch==", setup)
    assert re.search(r"pip install .*gansweep-\*\.whl", setup)
    wheel_dir = next(t for t, s in config["file_mounts"].items() if s.rstrip("/") == "./dist")
    assert f"{wheel_dir}/gansweep-" in setup
    init = "\n".join(config["initialization_commands"])
    assert re.search(rf"mount -t nfs4 .* {SHARED}\b", init), init


def test_launcher_credentials_come_from_a_mounted_env_file_not_the_config():
    config = doc(LAUNCHER)
    env_file = next(t for t in config["file_mounts"] if t.endswith("mlflow.env"))
    assert config["file_mounts"][env_file].startswith("~/"), "copied from the user's machine"
    relative = "~/" + Path(env_file).relative_to("/home/" + config["auth"]["ssh_user"]).as_posix()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in config[key] if "ray start" in c]
        assert f". {relative}" in start, start  # trials inherit the raylet's environment
        assert f"GANSWEEP_CACHE={SHARED}/" in start
        assert "RAY_AUTH_MODE=token" in start


# ------------------------------------------------------------------------ KubeRay RayJob


def pod_specs(job: dict) -> dict[str, dict]:
    cluster = job["spec"]["rayClusterSpec"]
    specs = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    for group in cluster["workerGroupSpecs"]:
        specs[group["groupName"]] = group["template"]["spec"]
    return specs


def test_the_rayjob_has_the_required_fields():
    job, _ = rayjob_parts()
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["entrypoint"].startswith("gansweep sweep ")
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"].startswith("2.")
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert cluster["workerGroupSpecs"]
    for group in cluster["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group
        assert "rayStartParams" in group


def test_every_rayjob_pod_mounts_a_declared_read_write_many_claim_at_the_storage():
    job, claims = rayjob_parts()
    sweep = next(args for args in commands_in(RAYJOB) if args[0] == "sweep")
    storage = parse_cli(sweep).params["storage"]
    for group, pod in pod_specs(job).items():
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            assert container["image"], group
            mounts = container["volumeMounts"]
            assert {m["name"] for m in mounts} <= volumes.keys(), (group, mounts)
            shared = [m for m in mounts if storage.startswith(m["mountPath"].rstrip("/") + "/")]
            assert shared, f"{group}: nothing mounted at {storage}"
            claim = volumes[shared[0]["name"]]["persistentVolumeClaim"]["claimName"]
            assert claim in claims, f"{group}: claim {claim!r} is not declared in {RAYJOB}"
            assert "ReadWriteMany" in claims[claim]["spec"]["accessModes"]


def test_every_rayjob_container_reads_the_credentials_from_a_secret():
    job, _ = rayjob_parts()
    for group, pod in pod_specs(job).items():
        for container in pod["containers"]:
            env = {e["name"]: e for e in container["env"]}
            for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                assert "value" not in env[name], (group, name)
                ref = env[name]["valueFrom"]["secretKeyRef"]
                assert ref["name"] and ref["key"], (group, name)
            assert env["GANSWEEP_CACHE"]["value"].startswith(SHARED + "/"), group


# ------------------------------------------------------------------ MLflow server compose


def mlflow_server_args() -> list[str]:
    command = doc(COMPOSE)["services"]["mlflow"]["command"]
    command = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    assert command[:2] == ["mlflow", "server"], command
    return command[2:]


def test_the_compose_file_has_the_services_healthchecks_and_start_order():
    services = doc(COMPOSE)["services"]
    assert {"postgres", "minio", "create-bucket", "mlflow"} <= services.keys()
    for name in ("postgres", "minio", "mlflow"):
        assert services[name]["healthcheck"]["test"], name
    assert services["create-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    mlflow_deps = services["mlflow"]["depends_on"]
    assert mlflow_deps["postgres"]["condition"] == "service_healthy"
    assert mlflow_deps["create-bucket"]["condition"] == "service_completed_successfully"


def test_the_mlflow_command_is_accepted_by_the_installed_mlflow_server():
    from mlflow.cli import cli

    params = cli.commands["server"].make_context("server", mlflow_server_args()).params
    assert urlparse(params["backend_store_uri"]).scheme == "postgresql"
    assert urlparse(params["backend_store_uri"]).password is None  # it comes from PGPASSWORD
    assert params["artifacts_destination"].startswith("s3://")
    assert params["serve_artifacts"] is True
    assert params["app_name"] == "basic-auth"
    bucket = urlparse(params["artifacts_destination"]).netloc
    create = " ".join(doc(COMPOSE)["services"]["create-bucket"]["entrypoint"])
    assert f"mc mb --ignore-existing store/{bucket}" in create


def test_the_mlflow_service_reads_its_auth_config_and_secrets_from_the_environment(monkeypatch):
    from mlflow.server.auth.config import read_auth_config
    from mlflow.server.auth.permissions import get_permission

    service = doc(COMPOSE)["services"]["mlflow"]
    env = service["environment"]
    for name in ("PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", env[name]), (name, env[name])  # required
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    assert mounts[env["MLFLOW_AUTH_CONFIG_PATH"]] == f"./{AUTH_INI}"

    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(DEPLOY / AUTH_INI))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    config = read_auth_config()  # what `mlflow server --app-name basic-auth` reads
    assert config.admin_username == "admin" and config.admin_password is None
    get_permission(config.default_permission)  # a permission MLflow knows
    auth_db = urlparse(config.database_uri)
    assert auth_db.scheme == "postgresql" and auth_db.hostname == "postgres"
    init_sql = doc(COMPOSE)["configs"]["auth-database"]["content"]
    assert f"CREATE DATABASE {auth_db.path.lstrip('/')}" in init_sql
