"""Validating a search space: every problem of a YAML space reported at once, each as
``file:line: key.path: what is wrong; valid: ...``. A typo in a space should cost a
second, not a cluster's worth of failed trials."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import yaml
from pydantic import ValidationError

from gansweep.search_spaces.space import (
    DEFAULTS,
    FIELDS,
    KINDS,
    Param,
    SearchSpace,
    SearchSpaceError,
)
from gansweep.search_spaces.yaml_nodes import compose, duplicate_keys, key_lines
from gansweep.trainables.config import ConfigError, TrialConfig, format_validation_error

TOP_LEVEL_KEYS = ("description", "fixed", "params")
SPEC_KEYS = (*KINDS, "step", "when")
EXAMPLE = (
    "e.g. {choice: [a, b]}, {uniform: [0.0, 0.9]}, {loguniform: [1.0e-4, 1.0e-2]}, "
    "{int: [1, 5], step: 2}"
)
# Random combinations tried at load time to catch values that are each valid but not
# together (e.g. a conv architecture on 2-D points). Seeded: the same space always gives
# the same verdict. Each takes ~30 us, so this costs milliseconds.
COMBINATION_CHECKS = 200


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _field_kind(name: str) -> set[type]:
    """The scalar types a TrialConfig field takes (e.g. {int} for n_critic)."""
    annotation = TrialConfig.model_fields[name].annotation
    # A union's members (int | None -> int, NoneType), else the annotation itself. Typing
    # only knows them as type expressions; the fields are all plain scalars or Optionals
    # of them, so each member here is a class.
    args: tuple[Any, ...] = getattr(annotation, "__args__", None) or (annotation,)
    return {a for a in args if a is not type(None)}


class _Checker:
    """Collects every problem of one space, each with its location."""

    def __init__(self, origin: str, lines: dict[tuple, int]) -> None:
        self.origin = origin
        self.lines = lines
        self.problems: list[str] = []

    def add(self, path: tuple, message: str, line: int | None = None) -> None:
        where = self.origin
        for n in range(len(path), 0, -1):  # the deepest key that has a line
            if line is None and path[:n] in self.lines:
                line = self.lines[path[:n]]
        if line is not None:
            where += f":{line}"
        key = ".".join(str(p) for p in path)
        self.problems.append(f"{where}: {key}: {message}" if key else f"{where}: {message}")

    def field_errors(self, path: tuple, name: str, value: Any, context: dict) -> list[str]:
        """What the TrialConfig field `name` says about `value` (errors on that field only)."""
        try:
            TrialConfig(**{**context, name: value})
        except ValidationError as err:
            messages = [
                f"{e['msg'].removeprefix('Value error, ')} (got {value!r})"
                for e in err.errors()
                if tuple(e["loc"]) == (name,)
            ]
            for message in messages:
                self.add(path, message)
            return messages
        return []

    def raise_if_any(self, name: str) -> None:
        if self.problems:
            raise SearchSpaceError(
                f"search space {name!r} is invalid:\n  " + "\n  ".join(self.problems),
                self.problems,
            )


def parse_space(text: str, name: str = "space", origin: str = "<string>") -> SearchSpace:
    """Validate a search space given as YAML text; raise SearchSpaceError listing every problem.

    ``origin`` is where the text came from (a file path), used in the messages.
    """
    try:
        node, data = compose(text)
    except yaml.YAMLError as err:
        raise SearchSpaceError(f"{origin}: not valid YAML: {err}") from None
    check = _Checker(origin, key_lines(node))
    for path, line in duplicate_keys(node):
        check.add(path, "key given twice (YAML would silently keep the last one)", line)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        check.add(
            (), f"a search space is a mapping with keys {', '.join(TOP_LEVEL_KEYS)}; got {got}"
        )
        check.raise_if_any(name)

    for key in data:
        if key not in TOP_LEVEL_KEYS:
            check.add((key,), f"unknown top-level key; valid: {', '.join(TOP_LEVEL_KEYS)}")
    description = data.get("description", "")
    if not isinstance(description, str) or "\n" in description.strip():
        check.add(("description",), f"must be one line of text, not {description!r}")
        description = str(description)

    fixed = _check_fixed(check, data.get("fixed"))
    params = _check_params(check, data.get("params"), fixed)
    check.raise_if_any(name)
    _check_combinations(check, fixed, params)
    check.raise_if_any(name)
    return SearchSpace(name, description.strip(), fixed, tuple(params), text)


def _check_fixed(check: _Checker, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        check.add(("fixed",), f"must be a mapping of TrialConfig field: value, not {raw!r}")
        return {}
    fixed: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in FIELDS:
            check.add(("fixed", key), f"unknown TrialConfig field; valid: {', '.join(FIELDS)}")
        else:
            fixed[key] = value
    try:
        TrialConfig(**fixed)
    except ValidationError as err:
        # Errors on one field are reported at its line; combined checks (the model
        # validator) wait for _check_combinations, where sampled params may fix them.
        for e in err.errors():
            if e["loc"]:
                message = e["msg"].removeprefix("Value error, ")
                check.add(("fixed", *e["loc"]), f"{message} (got {e.get('input')!r})")
    return fixed


def _check_params(check: _Checker, raw: Any, fixed: dict[str, Any]) -> list[Param]:
    if not isinstance(raw, dict) or not raw:
        check.add(
            ("params",),
            "a search space needs a mapping of at least one param, e.g. "
            "`loss: {choice: [ns, wgan]}` (for one fixed config, use `gansweep train`)",
        )
        return []
    params: list[Param] = []
    names = list(raw)
    for index, (name, spec) in enumerate(raw.items()):
        path = ("params", name)
        if name not in FIELDS:
            check.add(path, f"unknown parameter; valid: {', '.join(FIELDS)}")
            continue
        if name in fixed:
            check.add(path, "is also a fixed key; a key is either fixed or sampled, not both")
            continue
        param = _check_spec(check, path, name, spec, fixed)
        if param is None:
            continue
        when = _check_when(check, path, spec.get("when"), names, index, params, fixed)
        if when is not None:
            params.append(replace(param, when=when))
    return params


def _check_spec(
    check: _Checker, path: tuple, name: str, spec: Any, fixed: dict[str, Any]
) -> Param | None:
    if not isinstance(spec, dict):
        check.add(path, f"a param is a mapping with one of {', '.join(KINDS)}; {EXAMPLE}")
        return None
    unknown = [k for k in spec if k not in SPEC_KEYS]
    for key in unknown:
        check.add((*path, key), f"unknown key; valid: {', '.join(SPEC_KEYS)}")
    kinds = [k for k in spec if k in KINDS]
    if len(kinds) != 1:
        got = ", ".join(kinds) if kinds else "none"
        check.add(path, f"needs exactly one of {', '.join(KINDS)} (got {got}); {EXAMPLE}")
        return None
    kind = kinds[0]
    value = spec[kind]
    vpath = (*path, kind)
    if "step" in spec and kind != "int":
        check.add((*path, "step"), f"step is for int params, not {kind}")
        return None

    if kind == "choice":
        if not isinstance(value, list) or not value:
            check.add(vpath, f"needs a non-empty list of values, e.g. [{DEFAULTS[name]!r}]")
            return None
        ok = True
        for i, choice in enumerate(value):
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                check.add(
                    (*vpath, i), f"choices are scalars (text, number, true/false), not {choice!r}"
                )
                ok = False
            elif check.field_errors((*vpath, i), name, choice, fixed):
                ok = False
        if len(set(map(repr, value))) != len(value):
            check.add(vpath, f"a value is listed twice: {value!r}")
            ok = False
        return Param(name, kind, choices=tuple(value)) if ok else None

    # ranges: [low, high]
    types = _field_kind(name)
    if not isinstance(value, list) or len(value) != 2 or not all(map(_is_number, value)):
        check.add(vpath, f"needs [low, high], two finite numbers (got {value!r})")
        return None
    low, high = value
    if kind in ("uniform", "loguniform") and float not in types:
        what = "/".join(t.__name__ for t in types)
        check.add(vpath, f"{name} takes {what} values, not floats; use int or choice")
        return None
    if kind == "int" and not (types & {int, float}):
        what = "/".join(t.__name__ for t in types)
        check.add(vpath, f"{name} takes {what} values, not numbers; use choice")
        return None
    step = None
    if kind == "int":
        if not all(isinstance(v, int) for v in value):
            check.add(vpath, f"int bounds must be integers (got {value!r})")
            return None
        step = spec.get("step", 1)
        if not isinstance(step, int) or isinstance(step, bool) or step <= 0:
            check.add((*path, "step"), f"step must be a positive integer (got {step!r})")
            return None
        if low < high and (high - low) % step:
            check.add(
                (*path, "step"),
                f"high - low = {high - low} is not a multiple of step {step}; "
                f"e.g. [{low}, {low + (high - low) // step * step}]",
            )
            return None
    if low >= high:
        check.add(vpath, f"empty or inverted range: low {low!r} must be < high {high!r}")
        return None
    if kind == "loguniform" and low <= 0:
        check.add(vpath, f"loguniform needs low > 0 (got {low!r}); use uniform to include 0")
        return None
    if check.field_errors(vpath, name, low, fixed) or check.field_errors(vpath, name, high, fixed):
        return None
    if kind != "int":
        low, high = float(low), float(high)
    return Param(name, kind, low=low, high=high, step=step)


def _possible(param: Param) -> str:
    if param.kind == "choice":
        text = ", ".join(map(repr, param.choices))
    else:
        text = f"{param.kind} [{param.low}, {param.high}]"
    if param.when:
        text += f", or the default {DEFAULTS[param.name]!r} when not sampled"
    return text


def _can_take(param: Param, value: Any) -> bool:
    if param.when and value == DEFAULTS[param.name]:
        return True  # a conditional param that is not sampled has its default value
    if param.kind == "choice":
        return any(
            value == c and type(value) is type(c) or _same_number(value, c) for c in param.choices
        )
    low, high = param.bounds
    if not _is_number(value) or not low <= value <= high:
        return False
    return param.kind != "int" or (
        float(value).is_integer() and (int(value) - low) % (param.step or 1) == 0
    )


def _same_number(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and a == b


def _check_when(
    check: _Checker,
    path: tuple,
    raw: Any,
    names: list[str],
    index: int,
    params: list[Param],
    fixed: dict[str, Any],
) -> dict[str, tuple[Any, ...]] | None:
    if raw is None:
        return {}
    wpath = (*path, "when")
    if not isinstance(raw, dict) or not raw:
        check.add(wpath, "needs a mapping of key: [values], e.g. {optimizer: [adam]}")
        return None
    by_name = {p.name: p for p in params}
    earlier = names[:index]
    available = [*fixed, *earlier]
    when: dict[str, tuple[Any, ...]] = {}
    for key, allowed in raw.items():
        kpath = (*wpath, key)
        if key not in fixed and key not in earlier:
            if key == path[-1]:
                reason = "a param cannot depend on itself"
            elif key in names:
                reason = f"{key} is defined below this param; move it above"
            elif key in FIELDS:
                reason = f"{key} is not a fixed key or a param defined above this one"
            else:
                reason = "unknown key"
            options = ", ".join(available) or "none"
            check.add(kpath, f"{reason}; a condition may name: {options}")
            continue
        if not isinstance(allowed, list) or not allowed:
            check.add(kpath, f"needs a non-empty list of values, e.g. [{DEFAULTS[key]!r}]")
            continue
        if key in fixed:
            bad = [v for v in allowed if v != fixed[key]]
            possible = f"{fixed[key]!r} (fixed)"
        elif key in by_name:
            bad = [v for v in allowed if not _can_take(by_name[key], v)]
            possible = _possible(by_name[key])
        else:
            continue  # the earlier param was invalid; already reported
        for value in bad:
            check.add(kpath, f"{value!r} is not a possible value of {key}; possible: {possible}")
        if not bad:
            when[key] = tuple(allowed)
    return when if len(when) == len(raw) else None


def _check_combinations(check: _Checker, fixed: dict[str, Any], params: list[Param]) -> None:
    """Values valid one by one can clash (dcgan on 2-D points): try seeded random samples."""
    rng = random.Random(0)
    for _ in range(COMBINATION_CHECKS):
        sampled = _random_sample(params, fixed, rng)
        try:
            TrialConfig.from_dict({**fixed, **sampled})
        except ConfigError as err:
            try:
                TrialConfig(**fixed)
            except ValidationError as fixed_err:
                message = _one_line(format_validation_error(fixed_err))
                check.add(("fixed",), f"values do not validate together: {message}")
                return
            chosen = ", ".join(f"{k}={v!r}" for k, v in sampled.items())
            message = _one_line(str(err))
            check.add(("params",), f"sampled values do not validate together ({chosen}): {message}")
            return


def _one_line(message: str) -> str:
    """format_validation_error's lines as one: `config: a; lr_g: b`."""
    return message.removeprefix("invalid config:\n  ").replace("\n  ", "; ")


def _random_sample(
    params: list[Param], fixed: dict[str, Any], rng: random.Random
) -> dict[str, Any]:
    """One sample without Optuna; ranges give their endpoints a third of the time each."""
    effective = {**DEFAULTS, **fixed}
    sampled: dict[str, Any] = {}
    for param in params:
        if not param.active(effective):
            continue
        if param.kind == "choice":
            value = rng.choice(param.choices)
        elif param.kind == "int":
            value = rng.choice(param.values())
        else:
            low, high = param.bounds
            value = rng.choice([low, high, None])
            if value is None and param.log:
                value = math.exp(rng.uniform(math.log(low), math.log(high)))
            elif value is None:
                value = rng.uniform(low, high)
        sampled[param.name] = effective[param.name] = value
    return sampled
