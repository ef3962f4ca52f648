"""The cluster files in gansweep/platform/deploy/ parse, carry what their tools require,
hold no secret, ship with the package, expose nothing beyond what the deploy README says
(TLS in front of MLflow on one address, a bucket-scoped MinIO key, no default read access,
SSH from one range, the Ray dashboard on loopback, EFS over TLS), and every `gansweep ...`
command written in them (and in the README's cluster section) is one the real CLI accepts.

Nothing is run: this machine has no Docker engine (`docker compose config` is not
available), no AWS account and no Kubernetes, so each check parses the file
(yaml.safe_load, configparser, json, shlex) and asserts on the structure it finds, or
hands it to the tool's own Python code where that exists here (Ray's config validation
and security-group step, MLflow's CLI and auth config reader)."""

import configparser
import contextlib
import fnmatch
import importlib
import importlib.util
import ipaddress
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock
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
        # The server is only served over TLS: basic auth sends the password with every call.
        assert urlparse(params["tracking_uri"]).scheme == "https", params
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


def test_no_readme_command_holds_a_secret():
    for name, text in (("deploy README", (DEPLOY / "README.md").read_text()),
                       ("README cluster section", readme_cluster_section())):  # fmt: skip
        assert list(literal_secrets(code_blocks(text), name)) == []


def test_the_env_file_with_the_secrets_stays_out_of_git_and_out_of_the_package():
    """compose reads deploy/.env; neither git nor the wheel may pick it up."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():  # pragma: no cover - a source tarball
        pytest.skip("not a git checkout")
    env_file = (DEPLOY / ".env").relative_to(ROOT).as_posix()
    ignored = subprocess.run([git, "check-ignore", "-q", env_file], cwd=ROOT, check=False)
    assert ignored.returncode == 0, f"git would track {env_file}: add .env to .gitignore"
    assert not any(fnmatch.fnmatch(env_file.split("gansweep/", 1)[1], p) for p in shipped())


def test_the_auth_config_holds_no_password():
    config = configparser.ConfigParser()
    config.read(DEPLOY / AUTH_INI)
    for key, value in config["mlflow"].items():
        if SECRET_KEY.search(key):
            assert value == "" or PLACEHOLDER.match(value), f"{key} = {value!r}"
    assert urlparse(config["mlflow"]["database_uri"]).password is None


def shipped() -> list[str]:
    """The package-data patterns of the gansweep package (relative to gansweep/)."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return pyproject["tool"]["setuptools"]["package-data"]["gansweep"]


def test_the_deploy_files_ship_with_the_package():
    patterns = shipped()
    for path in DEPLOY.iterdir():
        if path.name.startswith("."):  # a local .env: see the test above
            continue
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


COMMAND_LISTS = (
    "initialization_commands", "setup_commands", "head_setup_commands",
    "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands",
)  # fmt: skip


def shell_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line, split at operators and braces, with `sudo`
    and leading VAR=value assignments dropped: [["mount", "-t", "efs", ...], ...]."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in SHELL_SEPARATORS or token in ("{", "}"):
            commands.append([])
        elif not (token == "sudo" or (not commands[-1] and ASSIGNMENT.match(token))):
            commands[-1].append(token)
    return [c for c in commands if c]


def launcher_commands(config: dict) -> Iterator[tuple[str, int, list[str]]]:
    """(list name, index in the list, simple command) for every command `ray up` runs."""
    for key in COMMAND_LISTS:
        for i, line in enumerate(config.get(key) or []):
            for command in shell_commands(line):
                yield key, i, command


def test_the_shell_splitter_finds_the_commands_behind_operators_and_sudo():
    line = "mountpoint -q /s || sudo mount -t efs -o tls fs-1:/ /s; A=1 ray start --head"
    assert shell_commands(line) == [
        ["mountpoint", "-q", "/s"], ["mount", "-t", "efs", "-o", "tls", "fs-1:/", "/s"],
        ["ray", "start", "--head"],
    ]  # fmt: skip
    assert shell_commands("command -v x || { echo no >&2; exit 1; }")[-1] == ["exit", "1"]


def test_every_launcher_node_mounts_efs_with_tls_or_stops():
    config = doc(LAUNCHER)
    mounts = [(i, c) for key, i, c in launcher_commands(config) if c[0] == "mount"]
    assert [key for key, _, c in launcher_commands(config) if c[0] == "mount"] == [
        "initialization_commands"
    ], "mount once, before setup, on every node"
    ((at, mount),) = mounts
    assert mount[mount.index("-t") + 1] == "efs", mount  # the EFS mount helper, not nfs4
    options = mount[mount.index("-o") + 1].split(",")
    assert "tls" in options, mount
    assert mount[-1] == SHARED and mount[-2].startswith("fs-"), mount
    # Before it, a command that stops `ray up` where the helper is missing (mount -t efs
    # would fail anyway; this says why instead of leaving a node without /shared).
    init = config["initialization_commands"]
    guards = [i for i, line in enumerate(init[:at]) if "mount.efs" in line]
    assert guards and ["exit", "1"] in shell_commands(init[guards[0]]), init


def test_no_launcher_command_walks_the_shared_tree():
    """initialization and setup commands run on every node at every `ray up`: a recursive
    chown there walks every sweep and checkpoint on EFS from every node."""
    for key, _, command in launcher_commands(doc(LAUNCHER)):
        if command[0] in ("chown", "chmod", "chgrp"):
            flags = [a for a in command[1:] if a.startswith("-")]
            recursive = "--recursive" in flags or any(
                "R" in f for f in flags if not f.startswith("--")
            )
            assert not recursive, f"{key}: {shlex.join(command)}"
    installs = [c for _, _, c in launcher_commands(doc(LAUNCHER)) if c[:2] == ["install", "-d"]]
    assert installs and {f"{SHARED}/sweeps", f"{SHARED}/cache"} <= set(installs[0]), installs


def ray_start_options(command: list[str]) -> dict[str, str]:
    """--name=value and --name value options of a `ray start` command (flags map to "")."""
    options: dict[str, str] = {}
    args = command[2:]
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            following = args[i + 1] if i + 1 < len(args) else "--"
            options[name] = value if eq else ("" if following.startswith("--") else following)
    return options


def test_the_ray_dashboard_listens_on_the_heads_loopback_only():
    """Its job API runs any command; `ray dashboard` reaches it through an SSH tunnel."""
    starts = [c for _, _, c in launcher_commands(doc(LAUNCHER)) if c[:2] == ["ray", "start"]]
    heads = [ray_start_options(c) for c in starts if "head" in ray_start_options(c)]
    assert len(heads) == 1 and len(starts) == 2, starts
    (head,) = heads
    assert ipaddress.ip_address(head["dashboard-host"]).is_loopback, head
    assert ray_start_options(["ray", "start", "--dashboard-host", "0.0.0.0", "--head"]) == {
        "dashboard-host": "0.0.0.0", "head": ""
    }  # fmt: skip


@contextlib.contextmanager
def ray_aws_config():
    """Ray's AWS launcher module. It imports boto3 at the top, which this project does not
    install; where it is missing, stand-ins let the module import (the test replaces every
    AWS call anyway), and the module is forgotten afterwards so that nothing else gets it."""
    if importlib.util.find_spec("boto3") is not None:  # pragma: no cover - boto3 installed
        from ray.autoscaler._private.aws import config

        yield config
        return
    stubs = ("boto3", "boto3.exceptions", "boto3.resources", "boto3.resources.base",
             "botocore", "botocore.client", "botocore.config", "botocore.exceptions")  # fmt: skip
    before = set(sys.modules)
    with pytest.MonkeyPatch.context() as patch:
        for name in stubs:
            patch.setitem(sys.modules, name, mock.MagicMock(name=name, __version__="99"))
        try:
            yield importlib.import_module("ray.autoscaler._private.aws.config")
        finally:
            for name in set(sys.modules) - before - set(stubs):
                if name.startswith("ray.autoscaler._private.aws"):
                    del sys.modules[name]


WORLD = re.compile(r"(?<![\d.])(0\.0\.0\.0/0|::/0)(?![\d])")


def test_every_launcher_node_is_in_the_security_group_you_made():
    """With SecurityGroupIds on every node type the launcher creates no group (a group it
    creates always admits SSH from 0.0.0.0/0, whatever provider.security_group adds), and
    `ray up` stops where that group does not exist. Ray's own step runs here: it must
    return without a single AWS call."""
    from ray.autoscaler._private.util import prepare_config

    config = doc(LAUNCHER)
    groups = {
        name: tuple(node["node_config"].get("SecurityGroupIds") or ())
        for name, node in config["available_node_types"].items()
    }
    assert all(groups.values()) and len(set(groups.values())) == 1, groups
    assert "security_group" not in config["provider"], "unused where every node names one"

    def no_aws(*args, **kwargs):
        raise AssertionError("the launcher would create or change a security group")

    with ray_aws_config() as aws_config, pytest.MonkeyPatch.context() as patch:
        patch.setattr(aws_config, "_resource", no_aws)
        patch.setattr(aws_config, "_client", no_aws)
        configured = aws_config._configure_security_group(prepare_config(config))
    assert {
        name: tuple(node["node_config"]["SecurityGroupIds"])
        for name, node in configured["available_node_types"].items()
    } == groups


def test_the_security_group_commands_open_ssh_to_admin_cidr_only():
    raw = (DEPLOY / LAUNCHER).read_text()
    assert not WORLD.search(raw), "an address range open to the whole internet"
    rules = [
        c for line in logical_lines(comment_text(raw)) if "aws ec2" in line
        for c in shell_commands(line.replace("$(", "( "))
        if c[:3] == ["aws", "ec2", "authorize-security-group-ingress"]
    ]  # fmt: skip
    by_port = {}
    for rule in rules:
        args = dict(zip(rule[3::2], rule[4::2], strict=False))
        by_port[args.get("--port", "all")] = args
    assert by_port.keys() == {"22", "all"}, rules
    assert by_port["22"]["--cidr"] == "$ADMIN_CIDR" and "--source-group" not in by_port["22"]
    assert by_port["all"]["--source-group"] == "$SG" and "--cidr" not in by_port["all"]
    assert "`ADMIN_CIDR`" in (DEPLOY / "README.md").read_text()
    assert WORLD.search("--cidr 0.0.0.0/0") and not WORLD.search("10.0.0.0/16")


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


def test_nothing_in_the_rayjob_is_published_outside_kubernetes():
    """The dashboard binds the pod's address (KubeRay's operator and submitter reach it
    through the head Service), so that Service stays in-cluster and the dashboard takes
    Ray's token."""
    job, _ = rayjob_parts()
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    assert head.get("enableIngress", False) is False
    assert cluster["authOptions"]["mode"] == "token"
    for part in docs(RAYJOB):  # no Service or Ingress of our own beside the RayJob
        assert part["kind"] in ("RayJob", "PersistentVolumeClaim"), part["kind"]
    for group, pod in pod_specs(job).items():
        assert not pod.get("hostNetwork"), group
        for container in pod["containers"]:
            assert not any("hostPort" in p for p in container.get("ports", [])), group


# ------------------------------------------------------------------ MLflow server compose


def mlflow_server_args() -> list[str]:
    command = doc(COMPOSE)["services"]["mlflow"]["command"]
    command = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    assert command[:2] == ["mlflow", "server"], command
    return command[2:]


def test_the_compose_file_has_the_services_healthchecks_and_start_order():
    services = doc(COMPOSE)["services"]
    assert {"postgres", "minio", "minio-init", "mlflow", "proxy"} <= services.keys()
    for name in ("postgres", "minio", "mlflow"):
        assert services[name]["healthcheck"]["test"], name
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    mlflow_deps = services["mlflow"]["depends_on"]
    assert mlflow_deps["postgres"]["condition"] == "service_healthy"
    assert mlflow_deps["minio-init"]["condition"] == "service_completed_successfully"
    assert services["proxy"]["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_the_mlflow_image_installs_the_driver_sqlalchemy_opens_postgresql_with():
    """SQLAlchemy 2.1 (which the pinned mlflow admits) opens postgresql:// with psycopg 3;
    an image with psycopg2 only would not start (found by tests/platform/test_postgres.py,
    which runs the same server on a real PostgreSQL)."""
    build = doc(COMPOSE)["services"]["mlflow"]["build"]["dockerfile_inline"]
    installs = [line for line in build.splitlines() if line.strip().startswith("RUN pip install")]
    assert len(installs) == 1
    words = shlex.split(installs[0])
    assert "psycopg[binary]" in words and "psycopg2-binary" in words, words


def test_the_mlflow_command_is_accepted_by_the_installed_mlflow_server():
    from mlflow.cli import cli

    params = cli.commands["server"].make_context("server", mlflow_server_args()).params
    assert urlparse(params["backend_store_uri"]).scheme == "postgresql"
    assert urlparse(params["backend_store_uri"]).password is None  # it comes from PGPASSWORD
    assert params["artifacts_destination"].startswith("s3://")
    assert params["serve_artifacts"] is True
    assert params["app_name"] == "basic-auth"
    assert ["mc", "mb", "--ignore-existing", f"store/{artifact_bucket()}"] in minio_init_commands()


def test_the_mlflow_service_reads_its_auth_config_and_secrets_from_the_environment(monkeypatch):
    from mlflow.server.auth.config import read_auth_config
    from mlflow.server.auth.permissions import get_permission

    service = doc(COMPOSE)["services"]["mlflow"]
    env = service["environment"]
    for name in ("PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # fmt: skip
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", env[name]), (name, env[name])  # required
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    assert mounts[env["MLFLOW_AUTH_CONFIG_PATH"]] == f"./{AUTH_INI}"

    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(DEPLOY / AUTH_INI))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    config = read_auth_config()  # what `mlflow server --app-name basic-auth` reads
    assert config.admin_username == "admin" and config.admin_password is None
    auth_db = urlparse(config.database_uri)
    assert auth_db.scheme == "postgresql" and auth_db.hostname == "postgres"
    init_sql = doc(COMPOSE)["configs"]["auth-database"]["content"]
    assert f"CREATE DATABASE {auth_db.path.lstrip('/')}" in init_sql
    assert config.default_permission == "NO_PERMISSIONS"  # a new user reads nothing it is not given
    assert not get_permission(config.default_permission).can_read


# The compose file is checked by parsing: `docker compose config` needs a Docker engine,
# which the machines these tests run on do not have.

INTERPOLATION = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<modifier>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))"
)


def compose_variables(node) -> dict[str, list[str]]:
    """{VAR: the modifier of each use ("" for ${VAR} or $VAR, ":-x", ":?message")} for
    every interpolation compose makes in these values; `$$` is a literal `$`."""
    found: dict[str, list[str]] = {}
    for text in yaml_strings(node):
        for match in INTERPOLATION.finditer(text.replace("$$", "")):
            name = match["braced"] or match["bare"]
            found.setdefault(name, []).append(match["modifier"] or "")
    return found


def only_variable(value: str) -> tuple[str, str]:
    """(VAR, modifier) of a value that is exactly one interpolation."""
    match = INTERPOLATION.fullmatch(value)
    assert match, f"{value!r} is not one ${{VAR}}"
    return match["braced"] or match["bare"], match["modifier"] or ""


def test_the_variable_reader_reads_what_compose_substitutes():
    sample = {"a": "$$NOT ${A:-x} and ${B:?set B}", "b": ["$C", "${A}"], "c": 5}
    assert compose_variables(sample) == {"A": [":-x", ""], "B": [":?set B"], "C": [""]}
    assert only_variable("${B:?set B}") == ("B", ":?set B")
    with pytest.raises(AssertionError):
        only_variable("x${B}")


def test_every_compose_variable_is_documented_and_a_missing_secret_stops_compose():
    readme = (DEPLOY / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", readme, flags=re.M))
    used = compose_variables(doc(COMPOSE))
    assert len(used) >= 8 and used.keys() <= documented, used.keys() - documented
    for name, modifiers in used.items():
        # Required (one use says `:?`, so compose stops without it) or a safe default.
        required = any(m.startswith(":?") for m in modifiers)
        assert required or all(m.startswith(":-") for m in modifiers), (name, modifiers)
        if SECRET_KEY.search(name):
            assert required, f"{name} must not have a default"


def compose_services() -> dict[str, dict]:
    return doc(COMPOSE)["services"]


def test_only_the_tls_proxy_has_a_port_on_the_host_and_not_on_every_address():
    services = compose_services()
    assert {name for name, service in services.items() if service.get("ports")} == {"proxy"}
    assert not any("network_mode" in service for service in services.values())
    for port in services["proxy"]["ports"]:
        assert isinstance(port, dict), "the long syntax, so the host address is explicit"
        assert port["target"] == 443 and str(port["published"]) == "443", port
        name, modifier = only_variable(port["host_ip"])
        assert modifier.startswith(":-"), "an address when the variable is unset"
        assert ipaddress.ip_address(modifier[2:]).is_loopback, port
        assert f"`{name}`" in (DEPLOY / "README.md").read_text()


def test_postgres_minio_and_mlflow_sit_on_an_internal_network_only():
    compose = doc(COMPOSE)
    internal = {name for name, net in compose["networks"].items() if (net or {}).get("internal")}
    assert internal
    for name, service in compose["services"].items():
        networks = set(service.get("networks") or ["default"])
        if name == "proxy":  # the one bridge between the two
            assert networks & internal and networks - internal, networks
        else:
            assert networks <= internal, (name, networks)


def caddy_sites(caddyfile: str) -> dict[str, list[list[str]]]:
    """{site address ("" for the global options): its directives as word lists}; enough
    of the Caddyfile grammar for the flat file in the compose config."""
    sites: dict[str, list[list[str]]] = {}
    current, depth = None, 0
    for line in caddyfile.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[-1] == "{":
            if depth == 0:
                current = " ".join(words[:-1])
                sites[current] = []
            depth += 1
        elif words == ["}"]:
            depth -= 1
        elif depth == 1 and current is not None:
            sites[current].append(words)
    assert depth == 0, "unbalanced braces"
    return sites


def volume_mounts(service: dict) -> dict[str, tuple[str, str]]:
    """{target: (source, mode)} of a service's short-syntax volumes (a source may be a
    ${VAR:?message} with colons in it)."""
    mounts = {}
    for volume in service.get("volumes", []):
        match = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(\w+))?", volume)
        assert match, volume
        mounts[match[2]] = (match[1], match[3] or "rw")
    return mounts


def test_the_proxy_serves_your_certificate_and_forwards_to_mlflow_only():
    compose = doc(COMPOSE)
    proxy = compose["services"]["proxy"]
    (config,) = proxy["configs"]
    assert config["target"] == "/etc/caddy/Caddyfile"  # where the caddy image reads it
    sites = caddy_sites(compose["configs"][config["source"]]["content"])
    assert ["auto_https", "off"] in sites.pop("")  # no certificate fetched, no port 80
    ((address, directives),) = sites.items()
    assert address.rsplit(":", 1)[1] == str(proxy["ports"][0]["target"]), address

    ((_, cert, key),) = [d for d in directives if d[0] == "tls"]
    mounts = volume_mounts(proxy)
    cert_dir = str(Path(cert).parent)
    assert Path(key).parent == Path(cert_dir) and cert_dir in mounts, (cert, key, mounts)
    source, mode = mounts[cert_dir]
    assert mode == "ro"
    name, modifier = only_variable(source)
    assert modifier.startswith(":?"), "no certificate folder, no start"
    readme = (DEPLOY / "README.md").read_text()
    for documented in (f"`{name}`", f"{name}/{Path(cert).name}", f"{name}/{Path(key).name}"):
        assert documented in readme, documented

    ((_, upstream),) = [d for d in directives if d[0] == "reverse_proxy"]
    args = mlflow_server_args()
    assert upstream == f"mlflow:{args[args.index('--port') + 1]}"


def test_the_caddyfile_reader_sees_sites_and_directives():
    text = "{\n  admin off\n}\n:443 {\n  tls /c/a.crt /c/a.key  # mine\n  reverse_proxy m:1\n}\n"
    assert caddy_sites(text) == {
        "": [["admin", "off"]],
        ":443": [["tls", "/c/a.crt", "/c/a.key"], ["reverse_proxy", "m:1"]],
    }
    with pytest.raises(AssertionError):
        caddy_sites(":443 {\n  tls a b\n")


def test_mlflow_answers_only_its_own_name():
    args = mlflow_server_args()
    hosts = args[args.index("--allowed-hosts") + 1].split(",")
    for host in hosts:
        name, _ = only_variable(host.removesuffix(":*"))
        assert name == "MLFLOW_SERVER_NAME", hosts
    assert any(m.startswith(":?") for m in compose_variables(hosts)["MLFLOW_SERVER_NAME"])


def artifact_bucket() -> str:
    args = mlflow_server_args()
    return urlparse(args[args.index("--artifacts-destination") + 1]).netloc


def minio_init_commands() -> list[list[str]]:
    """The simple commands of the minio-init script, as the shell sees them."""
    entrypoint = compose_services()["minio-init"]["entrypoint"]
    assert entrypoint[:2] == ["/bin/sh", "-c"], entrypoint
    script = entrypoint[2].replace("$$", "$")  # compose's escape for a literal `$`
    return [command for line in script.splitlines() for command in shell_commands(line)]


def test_the_mlflow_server_uses_a_bucket_scoped_minio_user_never_the_root_keys():
    services = compose_services()
    root = {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
    for name, service in services.items():
        if name not in ("minio", "minio-init"):
            assert not compose_variables(service).keys() & root, f"{name} gets MinIO's root keys"
    env = services["mlflow"]["environment"]
    key, _ = only_variable(env["AWS_ACCESS_KEY_ID"])
    secret, _ = only_variable(env["AWS_SECRET_ACCESS_KEY"])
    assert not {key, secret} & root
    # minio-init gets the same two values under the same names and makes that user.
    init = services["minio-init"]
    assert only_variable(init["environment"][key])[0] == key
    assert only_variable(init["environment"][secret])[0] == secret
    commands = minio_init_commands()
    assert ["mc", "admin", "user", "add", "store", f"${key}", f"${secret}"] in commands
    ((*_, policy, path),) = [c for c in commands if c[:4] == ["mc", "admin", "policy", "create"]]
    (policy_file,) = init["configs"]
    assert path == policy_file["target"]
    attach = [c for c in commands if c[:4] == ["mc", "admin", "policy", "attach"]]
    assert attach == [["mc", "admin", "policy", "attach", "store", policy, "--user", f"${key}"]]
    assert policy_file["source"] == "artifact-policy"


def test_the_artifact_policy_allows_the_bucket_and_nothing_else():
    policy = json.loads(doc(COMPOSE)["configs"]["artifact-policy"]["content"])
    bucket = artifact_bucket()
    allowed = {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    actions = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "Principal"} & statement.keys(), statement
        resources = statement["Resource"]
        assert set([resources] if isinstance(resources, str) else resources) <= allowed
        names = statement["Action"]
        actions |= set([names] if isinstance(names, str) else names)
    assert all(a.startswith("s3:") and "*" not in a for a in actions), actions
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= actions  # what MLflow needs
