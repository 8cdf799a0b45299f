"""An alias kept for ``python -m kruzoo.spectrum`` and old imports (experiments/plot_results.py):
the spectrum code lives in ``kruzoo.cli.spectrum`` (the ``kruzoo spectrum`` command), above the CLI.
Nothing in the package imports this module."""

from kruzoo.cli.spectrum import (
    SpectrumPlot,
    eigenvalues,
    load_config_model,
    load_model,
    main,
    save_spectrum,
    spectrum_figure,
    square_blocks,
)
from kruzoo.models.loading import load_model as load_checkpoint_model

__all__ = [
    "SpectrumPlot",
    "eigenvalues",
    "load_checkpoint_model",
    "load_config_model",
    "load_model",
    "main",
    "save_spectrum",
    "spectrum_figure",
    "square_blocks",
]

if __name__ == "__main__":
    main()
