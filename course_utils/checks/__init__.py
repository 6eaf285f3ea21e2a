"""Exercise checkers: each tests the student's code on known cases.

A check prints one line starting with a tick when the code is right, or raises
:class:`CheckFailed` with one short block that says what is wrong, on which known case, and how
to fix it; typical mistakes are recognised and named. Jupyter shows that block without the
course's traceback. A function that still raises ``NotImplementedError`` gives
:class:`NotWrittenYet` ("<the student's function name> is not written yet"). With
``$COURSE_CHECK_LOG`` set, every check appends a JSON record to that file (for tools; ``./course grade``
does not read it: it counts only the signed records it sees in the outputs of the cells it runs, see
:mod:`course_utils.grade`).
Framework-specific checks import TensorFlow or PyTorch only when called.
"""

from ._common import CheckFailed, NotWrittenYet, fail, passed, require
from .data import *  # noqa: F401,F403  lecture 01
from .dense import *  # noqa: F401,F403  lecture 02
from .unet import *  # noqa: F401,F403  lectures 03-04
from .losses import *  # noqa: F401,F403  lecture 05
from .evaluation import *  # noqa: F401,F403  lecture 06
from .fcn import *  # noqa: F401,F403  lecture 07
from .predict import *  # noqa: F401,F403  predict-run-explain tasks
from .capstone import *  # noqa: F401,F403  lecture 09's open task
from .dynamics import *  # noqa: F401,F403  lecture 08
