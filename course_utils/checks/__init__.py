"""Exercise checkers: each tests the student's code on known cases.

A check prints one line starting with a tick when the code is right, or raises
:class:`CheckFailed` with one sentence that says what is wrong and how to fix it.
Framework-specific checks import TensorFlow or PyTorch only when called.
"""

from ._common import CheckFailed, fail, passed
from .data import *  # noqa: F401,F403  lecture 01
from .dense import *  # noqa: F401,F403  lecture 02
from .unet import *  # noqa: F401,F403  lectures 03-04
from .losses import *  # noqa: F401,F403  lecture 05
from .evaluation import *  # noqa: F401,F403  lecture 06
from .fcn import *  # noqa: F401,F403  lecture 07
from .dynamics import *  # noqa: F401,F403  lecture 08
