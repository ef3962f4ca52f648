"""The champion as an MLflow pyfunc model: `export --register` logs the generator of the
best trial's run as a pyfunc model with a signature and an input example, registers it
with the alias `champion`, and tags the version with where it came from. What a
downstream user does, `mlflow.pyfunc.load_model("models:/NAME@champion").predict(...)`,
gives finite samples of the right shape, the same ones for the same seed.

What the model uploads is checked file by file: only the modules in SHIPPED_MODULES, no
pickle, nothing from the folder the export ran in; and a process that cannot import the
installed package loads the model from those files alone."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from gansweep.platform import champion_model, champion_pyfunc
from gansweep.platform.champion_model import MODEL_DIR, PACKAGE_PARENT, SHIPPED_MODULES, stage_code
from gansweep.platform.champion_pyfunc import MAX_SAMPLES, checked_request
from gansweep.platform.export import register_champion
from gansweep.records.manifest import Manifest
from gansweep.records.run_format import GENERATOR_FILE
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.engine import GANTrainer

TINY = {"steps": 4, "eval_every": 2, "eval_samples": 100, "batch_size": 32, "width": 16}


def champion_run(tmp_path, **config):
    """A finished MLflow run holding a trained generator.pt, as a trial leaves it, and
    the manifest and provenance that export hands to register_champion."""
    trainer = GANTrainer(TrialConfig.from_dict({**TINY, **config}))
    for _ in trainer.evaluations():
        pass
    generator = tmp_path / GENERATOR_FILE
    torch.save(trainer.generator_state_dict(), generator)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("s", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment)
    client.log_artifact(run.info.run_id, str(generator))
    client.set_terminated(run.info.run_id, "FINISHED")
    manifest = Manifest("s", str(tmp_path), uri, experiment, "parent", "s", "quick", "")
    provenance = {
        "mlflow_run_id": run.info.run_id, "trial_id": "t1", "metric": "distance",
        "mode": "min", "value": 0.125, "step": 4,
        "replicated": {
            "seeds": 2, "seeds_planned": 3, "distance": {"mean": 0.2, "sd": None, "worst": 0.3}
        },
    }  # fmt: skip
    return uri, run.info.run_id, manifest, provenance, trainer


def load_champion(uri, name):
    mlflow.set_tracking_uri(uri)
    return mlflow.pyfunc.load_model(f"models:/{name}@champion")


def test_the_registered_champion_loads_as_pyfunc_and_samples(tmp_path):
    uri, run_id, manifest, provenance, trainer = champion_run(tmp_path)
    ended = MlflowClient(uri).get_run(run_id).info
    version = register_champion(manifest, provenance, "ring8-gen")
    model = load_champion(uri, "ring8-gen")

    example = pd.DataFrame({"num_samples": [16], "seed": [0]})
    samples = model.predict(example)
    assert samples.shape == (16, 2) and samples.dtype == np.float32
    assert np.isfinite(samples).all()
    np.testing.assert_array_equal(model.predict(example), samples)  # same seed, same samples
    other = model.predict(pd.DataFrame({"num_samples": [16], "seed": [1]}))
    assert not np.allclose(other, samples)
    # Two requests in one table: their samples in order, each as if asked alone.
    both = model.predict(pd.DataFrame({"num_samples": [16, 3], "seed": [0, 1]}))
    # (equal up to float rounding: a batch of 3 multiplies in another order than one of 16)
    np.testing.assert_allclose(both[:16], samples, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both[16:], other[:3], rtol=1e-5, atol=1e-6)

    # They are the trained generator's samples, not some other network's.
    z = torch.randn(16, trainer.config.z_dim, generator=torch.Generator().manual_seed(0))
    g = trainer.G_ema if trainer.G_ema is not None else trainer.G
    with torch.no_grad():
        np.testing.assert_allclose(samples, g.eval()(z, None).numpy(), rtol=1e-5, atol=1e-6)

    client = MlflowClient(uri)
    registered = client.get_model_version_by_alias("ring8-gen", "champion")
    assert str(registered.version) == version and registered.run_id == run_id
    assert registered.tags["gansweep.sweep"] == "s"
    assert registered.tags["gansweep.metric"] == "distance"
    assert registered.tags["gansweep.distance"] == "0.125"
    assert registered.tags["gansweep.distance.worst"] == "0.3"
    assert registered.tags["gansweep.distance.sd"] == ""  # no value, not a made-up one
    assert registered.tags["gansweep.seeds"] == "2/3"
    # The model page's schema and example come from the model's metadata.
    info = mlflow.models.get_model_info("models:/ring8-gen@champion")
    assert info.signature.inputs.input_names() == ["num_samples", "seed"]
    assert info.signature.outputs.inputs[0].shape == (-1, 2)
    assert {a.path for a in client.list_artifacts(run_id)} >= {GENERATOR_FILE, MODEL_DIR}
    # The trial's run is not reopened: its status and end time are as the trial left them.
    after = client.get_run(run_id).info
    assert (after.status, after.end_time) == (ended.status, ended.end_time)

    # A second export registers a new version and moves the alias.
    assert register_champion(manifest, provenance, "ring8-gen") == str(int(version) + 1)
    assert str(client.get_model_version_by_alias("ring8-gen", "champion").version) == str(
        int(version) + 1
    )


def test_a_conditional_champion_takes_class_labels(tmp_path):
    uri, _, manifest, provenance, _ = champion_run(
        tmp_path, dataset="digits", conditional=True, z_dim=8
    )
    register_champion(manifest, provenance, "digits-gen")
    model = load_champion(uri, "digits-gen")
    info = mlflow.models.get_model_info("models:/digits-gen@champion")
    assert "labels" in info.signature.inputs.input_names()

    labels = [3] * 5
    samples = model.predict(pd.DataFrame({"num_samples": [5], "seed": [7], "labels": [labels]}))
    assert samples.shape[0] == 5 and samples.ndim == 4 and np.isfinite(samples).all()
    again = model.predict(pd.DataFrame({"num_samples": [5], "seed": [7], "labels": [labels]}))
    np.testing.assert_array_equal(samples, again)
    other = model.predict(
        pd.DataFrame({"num_samples": [5], "seed": [7], "labels": [[0, 1, 2, 4, 5]]})
    )
    assert not np.allclose(other, samples)  # the labels reach the generator
    with pytest.raises(Exception, match="class numbers"):
        model.predict(pd.DataFrame({"num_samples": [2], "seed": [0], "labels": [[0, 99]]}))


# What MLflow itself writes beside the model's code and weights.
MLFLOW_FILES = {
    "MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt",
    "input_example.json", "serving_input_example.json",
}  # fmt: skip
MODEL_FILES = {
    *MLFLOW_FILES,
    "champion_pyfunc.py",  # the model, as code
    "artifacts/generator.pt",
    *(f"code/{module}" for module in SHIPPED_MODULES),
}
SECRET = "GANSWEEP_TEST_SECRET=do-not-upload"
# A fresh interpreter that cannot import the installed gansweep: -I drops PYTHONPATH and
# the working directory from sys.path; the editable install's finders are removed here.
WITHOUT_GANSWEEP = """
import importlib.util, sys
def editable(x):  # a finder, a path hook, or the path entry that triggers the hook
    return (x if isinstance(x, str) else getattr(x, "__module__", "")).startswith("__editable__")
sys.meta_path = [f for f in sys.meta_path if not editable(f)]
sys.path_hooks = [h for h in sys.path_hooks if not editable(h)]
sys.path = [p for p in sys.path if not editable(p)]
sys.path_importer_cache.clear()
assert importlib.util.find_spec("gansweep") is None, "the installed gansweep is importable"
"""


def run_without_gansweep(script, *args, cwd):
    """Run `script` (after WITHOUT_GANSWEEP) in a fresh interpreter; its stdout."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", WITHOUT_GANSWEEP + script, *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def model_artifacts(client, run_id, path=MODEL_DIR):
    """Every file under `path` in the run's artifacts, relative to the model's folder."""
    files = set()
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            files |= model_artifacts(client, run_id, entry.path)
        else:
            files.add(entry.path.removeprefix(f"{MODEL_DIR}/"))
    return files


def test_the_model_uploads_its_listed_files_only_and_loads_from_them(tmp_path, monkeypatch):
    uri, run_id, manifest, provenance, _ = champion_run(tmp_path)
    # Exported from a folder that is a uv project with a secret beside it: MLflow, left
    # to itself, copies such a folder's pyproject.toml and uv.lock into the model.
    project = tmp_path / "project"
    project.mkdir()
    for name, text in [("pyproject.toml", "[project]\nname = 'x'\n"), ("uv.lock", "version = 1\n"),
                       (".python-version", "3.11\n"), (".env", SECRET)]:  # fmt: skip
        (project / name).write_text(text)
    monkeypatch.chdir(project)
    register_champion(manifest, provenance, "ring8-gen")

    files = model_artifacts(MlflowClient(uri), run_id)
    assert files == MODEL_FILES
    assert "python_model.pkl" not in files  # models from code: no pickled instance
    for unwanted in (".env", "pyproject.toml", "uv.lock", "tests/", "benchmarks/", "deploy/"):
        assert not any(unwanted in f for f in files), unwanted
    local = Path(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=MODEL_DIR, dst_path=str(tmp_path / "dl"), tracking_uri=uri
    ))  # fmt: skip
    for path in local.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
    # MLmodel records where the model's code was saved from: a scratch folder, not the
    # checkout (a path in someone's home) nor the folder the export ran in.
    mlmodel = (local / "MLmodel").read_text()
    assert "model_code_path" in mlmodel
    assert str(PACKAGE_PARENT) not in mlmodel and str(project) not in mlmodel

    mlflow.set_tracking_uri(uri)
    here = mlflow.pyfunc.load_model("models:/ring8-gen@champion")
    request = {"num_samples": [16, 5], "seed": [0, 3]}
    expected = here.predict(pd.DataFrame(request))
    # The same request in a process where only the model's shipped code can be gansweep.
    out = run_without_gansweep(
        """
import json, mlflow, numpy as np, pandas as pd, torch
torch.set_num_threads(1)
uri, name, request, out = sys.argv[1:]
mlflow.set_tracking_uri(uri)
model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
samples = model.predict(pd.DataFrame(json.loads(request)))
again = model.predict(pd.DataFrame(json.loads(request)))
np.save(out, samples)
print(json.dumps({"file": sys.modules["gansweep"].__file__,
                  "same": bool((samples == again).all())}))
""",
        uri, "ring8-gen", json.dumps(request), tmp_path / "drawn.npy", cwd=tmp_path,
    )  # fmt: skip
    report = json.loads(out.strip().splitlines()[-1])
    assert report["file"].endswith("/code/gansweep/__init__.py")
    assert not report["file"].startswith(str(PACKAGE_PARENT))
    assert report["same"]  # same seed, same samples
    drawn = np.load(tmp_path / "drawn.npy")
    assert drawn.shape == (21, 2)
    np.testing.assert_allclose(drawn, expected, rtol=1e-5, atol=1e-6)


def test_the_shipped_modules_are_what_the_model_code_imports(tmp_path):
    """With only SHIPPED_MODULES on its path, a fresh process runs the model's code
    (as MLflow does: the file executed under another name), and every listed module
    is one it imported: the list is enough, and no more."""
    staged = stage_code(tmp_path / "code")
    out = run_without_gansweep(
        """
import importlib.util, json
sys.path.insert(0, sys.argv[1])
spec = importlib.util.spec_from_file_location("code_model", sys.argv[2])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
ours = [m.__file__ for n, m in sys.modules.items() if n.split(".")[0] == "gansweep"]
print(json.dumps(sorted(ours)))
""",
        staged.parent, champion_model.MODEL_CODE, cwd=tmp_path,
    )  # fmt: skip
    imported = json.loads(out.strip().splitlines()[-1])
    assert {str(Path(f).relative_to(staged.parent)) for f in imported} == set(SHIPPED_MODULES)


def test_staging_copies_the_list_and_nothing_beside_it(tmp_path):
    """A copy of the repository with a secret in the package and beside it, and the
    folders that must stay home: only the listed modules reach the staging folder."""
    source = tmp_path / "repo"
    shutil.copytree(
        PACKAGE_PARENT / "gansweep", source / "gansweep",
        ignore=shutil.ignore_patterns("__pycache__"),
    )  # fmt: skip
    for secret in (".env", "gansweep/.env", "gansweep/trainables/.env"):
        (source / secret).write_text(SECRET)
    for folder in ("tests", "benchmarks"):
        (source / folder).mkdir()
        (source / folder / "x.py").write_text("")
    (source / "pyproject.toml").write_text("[project]\n")

    staged = stage_code(tmp_path / "out", source)
    assert staged == tmp_path / "out" / "gansweep"
    files = {str(p.relative_to(tmp_path / "out")) for p in staged.rglob("*") if p.is_file()}
    assert files == set(SHIPPED_MODULES)
    assert not any(SECRET in (tmp_path / "out" / f).read_text() for f in files)


def test_a_request_out_of_bounds_is_refused(tmp_path):
    uri, _, manifest, provenance, _ = champion_run(tmp_path)
    register_champion(manifest, provenance, "ring8-gen")
    model = load_champion(uri, "ring8-gen")
    bound = f"num_samples must be from 1 to {MAX_SAMPLES:,}, got"
    refused = [
        ({"num_samples": [MAX_SAMPLES + 1], "seed": [0]}, f"{bound} 100,001"),
        ({"num_samples": [0], "seed": [0]}, f"{bound} 0"),
        ({"num_samples": [-5], "seed": [0]}, f"{bound} -5"),
        ({"num_samples": [10**12], "seed": [0]}, "got 1,000,000,000,000"),
        ({"num_samples": [MAX_SAMPLES, 1], "seed": [0, 1]}, "at most 100,000 samples over all"),
        ({"num_samples": [3], "seed": [-1]}, "seed must be from 0"),
    ]  # fmt: skip
    for request, message in refused:
        with pytest.raises(Exception, match=message):
            model.predict(pd.DataFrame(request))
    # The bound itself is served.
    assert model.predict(pd.DataFrame({"num_samples": [MAX_SAMPLES], "seed": [0]})).shape == (
        MAX_SAMPLES,
        2,
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"num_samples": 2.5, "seed": 0}, "num_samples must be a whole number, got 2.5"),
        ({"num_samples": float("nan"), "seed": 0}, "num_samples must be a whole number"),
        ({"num_samples": "10", "seed": 0}, "num_samples must be a whole number, got '10'"),
        ({"num_samples": True, "seed": 0}, "num_samples must be a whole number, got True"),
        ({"num_samples": None, "seed": 0}, "num_samples must be a whole number, got None"),
        ({"num_samples": 2, "seed": 0.5}, "seed must be a whole number, got 0.5"),
        ({"num_samples": 2, "seed": 2**63}, "seed must be from 0 to"),
        ({"num_samples": 2, "seed": 0, "labels": [0, 1]}, "unconditional: it takes no labels"),
    ],
)
def test_a_row_that_is_not_a_request_is_refused(row, message):
    """What the model's signature lets through to predict (a float column where a value
    is missing, an object column) is checked again, with the value named."""
    with pytest.raises(ValueError, match=message):
        checked_request([row], num_classes=0)


def test_labels_are_checked_and_whole_floats_are_counts():
    assert checked_request([{"num_samples": 16.0, "seed": 3.0}], 0) == [(16, 3, None)]
    [(n, seed, labels)] = checked_request([{"num_samples": 3, "seed": 0}], 10)
    assert labels.tolist() == [0, 1, 2]  # omitted: the classes in turn
    for labels in ([0, 10], [0, -1], [0.5, 1], [1, 2, 3], "ab"):
        with pytest.raises(ValueError, match="labels must be 2 class numbers in 0..9"):
            checked_request([{"num_samples": 2, "seed": 0, "labels": labels}], 10)
    with pytest.raises(ValueError, match="no rows"):
        checked_request([], 0)


def test_the_artifact_key_agrees_with_the_model_code():
    """champion_model does not import the model's code (importing it calls set_model),
    so the key is written twice; they must agree."""
    assert champion_model.GENERATOR_ARTIFACT == champion_pyfunc.GENERATOR_ARTIFACT
