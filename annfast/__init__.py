"""annfast: fast per-sample training of small neural networks (multi-layer perceptrons)."""
from ._core import DivergenceError
from ._fann import FannFileError
from ._io import ModelFileError
from .callbacks import Callback, EarlyStopping
from .history import History
from .network import Dense, Network, load, load_fann

__version__ = "0.1.0"

__all__ = ["Callback", "Dense", "DivergenceError", "EarlyStopping", "FannFileError", "History", "ModelFileError",
           "Network", "__version__", "load", "load_fann"]
