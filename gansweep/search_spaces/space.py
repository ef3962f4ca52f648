"""The search space model: a small YAML format, validated up front (validate.py), turned
into Optuna's define-by-run function here.

A space holds ``fixed`` TrialConfig fields (the same in every trial) and ``params``, sampled
in file order. Each param is one of::

    loss: {choice: [ns, wgan, hinge]}
    beta1: {uniform: [0.0, 0.9], when: {optimizer: [adam]}}
    lr_g: {loguniform: [1.0e-4, 3.0e-3]}
    n_critic: {int: [1, 5], step: 2}

``when`` makes a param conditional: it is sampled only when every named key (an earlier
param or a fixed key) has one of the listed values. A param that is not sampled takes the
TrialConfig default, so a trial's config holds only what was chosen for it.

Everything that can be checked before a sweep starts is checked when a space is loaded
(validate.py), and every problem is reported at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gansweep.trainables.config import TrialConfig

if TYPE_CHECKING:
    import optuna

KINDS = ("choice", "uniform", "loguniform", "int")
FIELDS = tuple(TrialConfig.model_fields)
DEFAULTS: dict[str, Any] = {name: f.default for name, f in TrialConfig.model_fields.items()}
GRID_LIMIT = 1_000_000  # grid_size() gives up beyond this many configurations


class SearchSpaceError(ValueError):
    """A search space that does not load; the message names each bad key and the valid options."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class Param:
    """One sampled TrialConfig field: its distribution and the condition for sampling it."""

    name: str
    kind: str  # choice | uniform | loguniform | int
    choices: tuple[Any, ...] = ()  # choice only
    low: float | int | None = None  # uniform, loguniform, int
    high: float | int | None = None
    step: int | None = None  # int only; None means 1
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # all must hold

    @property
    def log(self) -> bool:
        """Sampled on a log scale (loguniform)."""
        return self.kind == "loguniform"

    @property
    def discrete(self) -> bool:
        return self.kind in ("choice", "int")

    @property
    def bounds(self) -> tuple[float | int, float | int]:
        """(low, high) of a range param (uniform, loguniform, int)."""
        # validate.py gives every range param both bounds; only choice params lack them
        assert self.low is not None and self.high is not None, f"{self.name!r} is not a range"
        return self.low, self.high

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether the condition holds, given the values of the keys it names."""
        return all(values[key] in allowed for key, allowed in self.when.items())

    def values(self) -> list[Any]:
        """Every value of a discrete param (choices, or the int grid)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            low, high = self.bounds
            return list(range(int(low), int(high) + 1, self.step or 1))
        raise ValueError(f"param {self.name!r} is continuous ({self.kind})")

    def contains(self, value: Any) -> bool:
        """Whether this param's distribution holds `value` (a choice, or within the range
        and on the int grid)."""
        if self.kind == "choice":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        low, high = self.bounds
        if not low <= value <= high:
            return False
        return self.kind != "int" or (value == int(value) and (value - low) % (self.step or 1) == 0)

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask Optuna for this param's value."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        low, high = self.bounds
        if self.kind == "int":
            return trial.suggest_int(self.name, int(low), int(high), step=self.step or 1)
        return trial.suggest_float(self.name, float(low), float(high), log=self.log)

    def describe(self) -> str:
        """One line, e.g. ``loguniform [0.0001, 0.003] when optimizer in [adam]``."""
        if self.kind == "choice":
            text = f"choice {list(self.choices)}"
        else:
            text = f"{self.kind} [{self.low}, {self.high}]"
            if self.step not in (None, 1):
                text += f" step {self.step}"
        if self.when:
            text += " when " + ", ".join(f"{k} in {list(v)}" for k, v in self.when.items())
        return text


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space. ``define`` is the define-by-run function for OptunaSearch."""

    name: str
    description: str
    fixed: dict[str, Any]
    params: tuple[Param, ...]
    source: str  # the YAML text, kept so a sweep can record exactly what it searched

    def sample_params(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every param whose condition holds, in order; return what was sampled."""
        values = {**DEFAULTS, **self.fixed}  # what each condition reads: effective values
        sampled: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                values[param.name] = sampled[param.name] = param.suggest(trial)
        return sampled

    def params_of(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """What this space would sample to train `config` (any TrialConfig's values, from
        this space or another): its value for each param whose condition holds, where the
        param's distribution holds it; and the names of the active params it could not
        give a value (missing, or outside the distribution), in space order."""
        values = {**DEFAULTS, **self.fixed}
        params: dict[str, Any] = {}
        left_out: list[str] = []
        for param in self.params:
            if not param.active(values):
                continue
            value = config.get(param.name)
            if param.contains(value):
                values[param.name] = params[param.name] = value
            else:
                left_out.append(param.name)
                # Later conditions read the config's value, or the default where it has none.
                values[param.name] = config.get(param.name, DEFAULTS[param.name])
        return params, left_out

    def define(self, trial: optuna.Trial) -> dict[str, Any]:
        """Define-by-run function for Ray's ``OptunaSearch(space=space.define)``.

        Suggests the params on ``trial`` and returns the fixed values: OptunaSearch merges
        the returned constants with the values captured from the ``suggest_*`` calls.
        """
        self.sample_params(trial)
        return dict(self.fixed)

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """The full config dict of one trial: fixed values and sampled params."""
        return {**self.fixed, **self.sample_params(trial)}

    def sample_config(self, trial: optuna.Trial) -> TrialConfig:
        """One trial's validated TrialConfig (raises ConfigError if it does not build)."""
        return TrialConfig.from_dict(self.sample(trial))

    def possible_values(self, name: str) -> list[Any]:
        """The values a TrialConfig field can take in this space: its choices (or the int
        grid, or [low, high] for a continuous param; plus the default where a condition
        can leave it unsampled), else its fixed value, else its default."""
        param = next((p for p in self.params if p.name == name), None)
        if param is None:
            return [self.fixed.get(name, DEFAULTS[name])]
        values = param.values() if param.discrete else [param.low, param.high]
        if param.when:
            values.append(DEFAULTS[name])
        return values

    def largest(self, name: str) -> Any:
        """The largest value a numeric field can take in this space (e.g. steps)."""
        return max(v for v in self.possible_values(name) if v is not None)

    @property
    def is_discrete(self) -> bool:
        """All params are choices or ints: the space can be searched exhaustively (grid)."""
        return all(p.discrete for p in self.params)

    def grid_size(self) -> int:
        """How many distinct configurations a grid search visits (discrete spaces only)."""
        if not self.is_discrete:
            continuous = [p.name for p in self.params if not p.discrete]
            raise SearchSpaceError(
                f"search space {self.name!r} is not discrete (continuous: "
                f"{', '.join(continuous)}); a grid needs only choice and int params"
            )
        count = 0
        for _ in _walk(self.params, {**DEFAULTS, **self.fixed}):
            count += 1
            if count > GRID_LIMIT:
                raise SearchSpaceError(
                    f"search space {self.name!r} has more than {GRID_LIMIT:,} configurations"
                )
        return count


def _walk(params: tuple[Param, ...], values: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every combination of a discrete space (conditions respected), depth first."""
    if not params:
        yield values
        return
    first, rest = params[0], params[1:]
    if not first.active(values):
        yield from _walk(rest, values)
        return
    for value in first.values():
        yield from _walk(rest, {**values, first.name: value})
