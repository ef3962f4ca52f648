"""A synthetic landscape table in the recorded table's format (benchmarks/landscape/
record.py), for tests that must not depend on hours of recording: every config of a
discrete space on a few seeds, with curves that improve with steps, a quality that
depends on the config, and a cost that grows with n_critic."""

from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd

from gansweep.search_spaces import load_space
from gansweep.search_spaces.space import DEFAULTS, _walk
from gansweep.trainables.config import TrialConfig

SPACE = Path(__file__).parents[2] / "benchmarks" / "landscape" / "ring8_space.yaml"


def _noise(*parts: object) -> float:
    """A fixed pseudo-random number in [0, 1) for the given parts."""
    return zlib.crc32(repr(parts).encode()) / 2**32


def synthetic_table(space_path: Path = SPACE, seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    space = load_space(str(space_path))
    rows = []
    for values in _walk(space.params, {**DEFAULTS, **space.fixed}):
        for seed in seeds:
            cfg = TrialConfig.from_dict({**values, "seed": seed})
            fields = cfg.model_dump()
            quality = 0.02 + _noise(cfg.combination, cfg.lr_g, cfg.lr_d, cfg.penalty_weight)
            diverges = _noise("diverges", fields, seed) < 0.03
            per_step = 0.008 * cfg.n_critic
            for i, step in enumerate(range(cfg.eval_every, cfg.steps + 1, cfg.eval_every)):
                distance = quality * (1 + 2.0 / (i + 1)) * (1 + 0.2 * _noise(seed, step, quality))
                diverged = diverges and i == 1
                rows.append(
                    {
                        **fields,
                        "step": step,
                        "combination": cfg.combination,
                        "trial_id": f"t{len(rows)}",
                        "status": "diverged" if diverges else "finished",
                        "distance": 1e6 if diverged else distance,
                        "diverged": float(diverged),
                        "high_quality": 0.0 if diverged else max(0.0, 1 - 10 * distance),
                        "modes_captured": 0.0 if diverged else 8.0,
                        "train_seconds": per_step * step * 1.1,
                        "train_cpu_seconds": per_step * step,
                    }
                )
                if diverged:
                    break
    return pd.DataFrame(rows)
