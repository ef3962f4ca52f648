"""Finding a search space: a built-in one by name, or a YAML file (validate.py checks it)."""

from __future__ import annotations

from pathlib import Path

from gansweep.search_spaces.space import SearchSpace, SearchSpaceError
from gansweep.search_spaces.validate import parse_space

SPACES_DIR = Path(__file__).parent


def _builtin_spaces() -> dict[str, Path]:
    return {path.stem: path for path in sorted(SPACES_DIR.glob("*.yaml"))}


BUILTIN_SPACES: dict[str, Path] = _builtin_spaces()


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A built-in space by name (see BUILTIN_SPACES) or a space from a YAML file."""
    text = str(name_or_path)
    if isinstance(name_or_path, str) and text in BUILTIN_SPACES:
        path = BUILTIN_SPACES[text]
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise SearchSpaceError(
                f"unknown search space {text!r}: not a built-in space and not a file; "
                f"built-in: {', '.join(BUILTIN_SPACES)}"
            )
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SearchSpaceError(f"search space file {text!r} cannot be read: {err}") from None
    return parse_space(source, name=path.stem, origin=str(path))
