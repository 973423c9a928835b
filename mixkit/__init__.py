"""mixkit: choose a pretraining data mixture from small proxy runs and fitted mixing laws."""

__version__ = "0.1.0"

from mixkit import paths  # noqa: F401  (light; lets notebooks write mixkit.paths.notebook_dirs)
