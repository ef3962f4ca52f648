"""Trial checkpoints: weights-only loading refuses pickled code; a corrupted checkpoint is
refused with a clear error and the trial falls back to the previous one."""

import os
import pickle
from pathlib import Path

import pytest
import torch
from ray import tune

from gansweep.platform.trial import restore_checkpoint, restore_trainer
from gansweep.trainables.checkpoint import (
    CHECKPOINT_FILE,
    CheckpointError,
    load_trial_checkpoint,
    save_trial_checkpoint,
)
from gansweep.trainables.engine import GANTrainer, load_generator

TINY = dict(width=8, batch_size=16, steps=4, eval_every=2, eval_samples=50)


class Exploit:
    """Unpickling this runs code: it creates a file named by `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_checkpoint(folder: Path, steps: int) -> GANTrainer:
    trainer = GANTrainer(TINY)
    for _ in range(steps):
        trainer.train_step()
    folder.mkdir(parents=True)
    save_trial_checkpoint(folder, trainer, run_id=f"run-{steps}", metrics={"step": steps})
    return trainer


def test_a_checkpoint_round_trips(tmp_path):
    folder = tmp_path / "checkpoint_000000"
    trainer = write_checkpoint(folder, steps=2)
    state = load_trial_checkpoint(folder)
    assert state["mlflow_run_id"] == "run-2" and state["trainer"]["step"] == trainer.step
    assert state["metrics"] == {"step": 2} and state["trial_id"] == ""
    # Every saved tensor (both networks, both optimizers' moments, the RNG) as it was.
    assert_same(state["trainer"], trainer.state_dict())
    # Loaded into a new trainer the way a restored trial does, it holds the same tensors.
    resumed = GANTrainer(TINY)
    assert restore_trainer(resumed, state, trial_id="") == ("run-2", "")
    assert_same(resumed.state_dict(), trainer.state_dict())
    # The generator a user loads from the checkpoint has the trained weights.
    loaded = load_generator(folder / CHECKPOINT_FILE).state_dict()
    assert_same(loaded, trainer.generator_state_dict()["generator"])


def assert_same(saved, expected, where="state"):
    """Tensors bit for bit (torch.equal, same dtype), everything else equal, through
    nested dicts and lists."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(saved, torch.Tensor), where
        assert saved.dtype == expected.dtype and torch.equal(saved, expected), where
    elif isinstance(expected, dict):
        assert saved.keys() == expected.keys(), where
        for key in expected:
            assert_same(saved[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(saved) == len(expected), where
        for i, (a, b) in enumerate(zip(saved, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert saved == expected, where


def test_a_malicious_pickle_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "checkpoint_000000"
    folder.mkdir()
    with (folder / CHECKPOINT_FILE).open("wb") as f:
        pickle.dump({"trainer": Exploit(marker)}, f)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_trial_checkpoint(folder)
    assert not marker.exists()

    torch.save({"generator": Exploit(marker)}, tmp_path / "generator.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_generator(tmp_path / "generator.pt")
    assert not marker.exists()


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    earlier = write_checkpoint(tmp_path / "checkpoint_000000", steps=2)
    later = write_checkpoint(tmp_path / "checkpoint_000001", steps=4)
    latest = tmp_path / "checkpoint_000001" / CHECKPOINT_FILE
    latest.write_bytes(latest.read_bytes()[:100])  # a crash in the middle of a write

    with pytest.warns(UserWarning, match="fell back to .*checkpoint_000000"):
        state = restore_checkpoint(tune.Checkpoint.from_directory(tmp_path / "checkpoint_000001"))
    assert state["mlflow_run_id"] == "run-2" and state["trainer"]["step"] == 2
    assert_same(state["trainer"], earlier.state_dict())  # the earlier one's tensors
    weights = state["trainer"]["generator"]
    assert not all(torch.equal(w, later.G.state_dict()[k]) for k, w in weights.items())


def test_with_no_readable_checkpoint_the_error_names_every_file(tmp_path):
    write_checkpoint(tmp_path / "checkpoint_000000", steps=2)
    (tmp_path / "checkpoint_000000" / CHECKPOINT_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no readable checkpoint: cannot read checkpoint"):
        restore_checkpoint(tune.Checkpoint.from_directory(tmp_path / "checkpoint_000000"))
