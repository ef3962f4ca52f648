"""Built-in YAML search spaces and the loader that validates one and turns it into an
Optuna define-by-run function (``OptunaSearch(space=load_space("quick").define, ...)``)."""

from gansweep.search_spaces.loader import BUILTIN_SPACES, load_space
from gansweep.search_spaces.space import Param, SearchSpace, SearchSpaceError
from gansweep.search_spaces.validate import parse_space

__all__ = [
    "BUILTIN_SPACES",
    "Param",
    "SearchSpace",
    "SearchSpaceError",
    "load_space",
    "parse_space",
]
