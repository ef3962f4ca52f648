"""The champion as an MLflow pyfunc model: `export --register` logs the generator of the
best trial's run as a pyfunc model with a signature and an input example, registers it
with the alias `champion`, and tags the version with where it came from. What a
downstream user does, `mlflow.pyfunc.load_model("models:/NAME@champion").predict(...)`,
gives finite samples of the right shape, the same ones for the same seed."""

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from gansweep.platform.champion_model import MODEL_DIR
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
