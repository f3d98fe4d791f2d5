"""annfast: fast per-sample training of small neural networks (multi-layer perceptrons)."""
from ._core import DivergenceError
from .history import History
from .network import Dense, Network

__version__ = "0.1.0"

__all__ = ["Dense", "DivergenceError", "History", "Network", "__version__"]
