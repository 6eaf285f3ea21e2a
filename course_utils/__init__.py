"""Helpers for the semantic segmentation course.

Importing ``course_utils`` loads neither TensorFlow nor PyTorch: the
framework-specific code lives in ``course_utils.keras`` and
``course_utils.torch``, which a notebook imports only for the framework it uses.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
