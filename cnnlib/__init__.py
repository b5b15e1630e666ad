"""cnnlib: the library behind the cnn-from-scratch course.

Reference layers (numpy, float64 by default), gradient checks, Numba kernels, training,
data loading, plots and the student-facing exercise checks. See docs/architecture.md.
"""

__version__ = "0.1.0"
