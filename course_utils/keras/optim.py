"""The course's Adam for Keras 3, set to agree with PyTorch's (:mod:`course_utils.torch.optim`).

=====================  ==================================  ====================================
                       Keras 3 ``keras.optimizers.Adam``   PyTorch ``torch.optim.Adam``
=====================  ==================================  ====================================
epsilon default        1e-7                                1e-8  (the course sets 1e-8 in both)
where epsilon enters   ``sqrt(v) + eps`` after folding the  ``sqrt(v_hat) + eps`` (v_hat bias-
                       bias correction into the rate        corrected): torch's eps at step t
                       ("epsilon hat")                      equals Keras' eps / sqrt(1 - b2**t)
weight decay           ``weight_decay=`` is decoupled       ``weight_decay=`` is an L2 term in
                       (= torch ``AdamW``)                  the gradient; ``AdamW`` is decoupled
=====================  ==================================  ====================================

With the course's ``epsilon=1e-8`` the two differ only in that placement: Keras' epsilon acts
like torch's eps times ``1 / sqrt(1 - 0.999**t)`` (31.6x at step 1, 3.2x at step 100, 1.3x at
step 1000), which matters only for weights whose gradients are below about 1e-6.
``tests/test_training_parity.py`` trains ported twins 30 steps in both frameworks and checks that
losses and predictions agree.
"""

from __future__ import annotations

import keras

__all__ = ["ADAM_EPSILON", "make_adam"]

#: Adam's epsilon in both frameworks (torch's default; Keras' default is 1e-7).
ADAM_EPSILON = 1e-8


def make_adam(learning_rate: float = 1e-3, weight_decay: float | None = None) -> keras.optimizers.Optimizer:
    """``keras.optimizers.Adam(learning_rate, epsilon=1e-8)``: the course's Adam, matching PyTorch's.

    ``weight_decay`` (optional) is decoupled, like ``torch.optim.AdamW``
    (:func:`course_utils.torch.optim.make_adam` then returns AdamW).
    """
    if weight_decay:
        return keras.optimizers.AdamW(learning_rate, weight_decay=float(weight_decay), epsilon=ADAM_EPSILON)
    return keras.optimizers.Adam(learning_rate, epsilon=ADAM_EPSILON)
