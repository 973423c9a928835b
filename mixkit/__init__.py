"""mixkit: choose a pretraining data mixture from small proxy runs and fitted mixing laws."""

__version__ = "0.1.0"

import warnings as _warnings

# Notebooks run without ipywidgets; tqdm.auto then falls back to text bars, which is what the HTML
# reports want, so its "IProgress not found" notice is noise.
_warnings.filterwarnings("ignore", message="IProgress not found")

from mixkit import paths  # noqa: E402,F401  (light; lets notebooks write mixkit.paths.notebook_dirs)
