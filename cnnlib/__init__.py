"""cnnlib: the library behind the cnn-from-scratch course.

Reference layers (numpy, float64 by default), gradient checks, Numba kernels, training,
data loading, plots and the student-facing exercise checks. See docs/architecture.md.
"""

__version__ = "0.1.0"

# The language of reports and hints: cnnlib.set_language("zh") in a Chinese notebook.
from cnnlib.i18n import set_language  # noqa: E402

__all__ = ["set_language"]
