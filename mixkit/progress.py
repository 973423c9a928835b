"""Progress bars for long work: tqdm's notebook widget where ipywidgets is installed, text bars elsewhere."""

from __future__ import annotations

import functools
import warnings


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar (same arguments as `tqdm.tqdm`), the kind that suits where the code runs."""
    return _tqdm_class()(iterable, **kwargs)


@functools.cache
def _tqdm_class():
    # In a Jupyter kernel without ipywidgets, importing tqdm.auto warns "IProgress not found" and falls
    # back to text bars, which is what the HTML reports want: the notice is noise, silenced for this
    # one import only (no process-wide warnings filter).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm
