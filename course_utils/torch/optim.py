"""The course's Adam for PyTorch, set to agree with Keras' (:mod:`course_utils.keras.optim`).

``torch.optim.Adam(params, lr)`` with its default ``eps=1e-8``; Keras' compile_model sets the same
epsilon (Keras' own default is 1e-7). Differences by design, see :mod:`course_utils.keras.optim`:
Keras adds epsilon after folding the bias correction into the rate (its eps acts like torch's eps
times ``1 / sqrt(1 - 0.999**t)``), and Keras' ``weight_decay`` is decoupled, i.e. torch's
``AdamW``, while ``torch.optim.Adam(weight_decay=...)`` adds an L2 term to the gradient.
"""

from __future__ import annotations

import torch

__all__ = ["ADAM_EPSILON", "make_adam"]

#: Adam's epsilon in both frameworks (torch's default; Keras' default is 1e-7).
ADAM_EPSILON = 1e-8


def make_adam(params, lr: float = 1e-3, weight_decay: float | None = None) -> torch.optim.Optimizer:
    """``torch.optim.Adam(params, lr, eps=1e-8)``: the course's Adam, matching ``compile_model`` in Keras.

    ``weight_decay`` (optional) is decoupled: then ``torch.optim.AdamW``, which is what Keras'
    ``Adam``/``AdamW(weight_decay=...)`` does.
    """
    if weight_decay:
        return torch.optim.AdamW(params, lr=lr, eps=ADAM_EPSILON, weight_decay=float(weight_decay))
    return torch.optim.Adam(params, lr=lr, eps=ADAM_EPSILON)
