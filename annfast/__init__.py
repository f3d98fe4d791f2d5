"""annfast: fast per-sample training of small neural networks (multi-layer perceptrons)."""
from ._core import DivergenceError
from ._fann import FannFileError
from ._io import ModelFileError
from .callbacks import Callback, CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau
from .history import History
from .network import Dense, Network, load, load_fann
from .schedules import Adaptive, Constant, InvScaling, LearningRateSchedule

__version__ = "0.1.0"

__all__ = ["Adaptive", "CSVLogger", "Callback", "Constant", "Dense", "DivergenceError", "EarlyStopping",
           "FannFileError", "History", "InvScaling", "LearningRateSchedule", "LearningRateScheduler",
           "ModelCheckpoint", "ModelFileError", "Network", "ReduceLROnPlateau", "__version__", "load", "load_fann"]
