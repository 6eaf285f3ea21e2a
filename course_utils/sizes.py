"""Size arithmetic of convolutional networks (framework-free).

- :func:`check_input_size` / :func:`nearest_valid_sizes`: a U-Net of depth ``d``
  halves the image ``d`` times, so height and width must be multiples of ``2**d``.
- :func:`output_size` / :func:`transposed_output_size`: the output-size formulas
  of a convolution (or pooling) and of a transposed convolution, as in the
  PyTorch documentation.
- :func:`receptive_field`: how many input pixels one output pixel sees after a
  stack of layers.

Used by both U-Nets (``course_utils.keras.unet`` and ``course_utils.torch.unet``)
and by lecture 02.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_input_size",
    "nearest_valid_sizes",
    "output_size",
    "transposed_output_size",
    "receptive_field",
    "receptive_field_table",
    "bilinear_kernel",
    "check_divisible",
    "stage_filters",
    "OUTPUT_STRIDES",
    "stage_dilations",
]


def _check_positive_int(value, what: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        # numpy integers are fine; floats such as 64.0 are not silently accepted
        try:
            import numpy as np

            if isinstance(value, np.integer):
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise TypeError(
                f"{what} must be an integer, got {value!r} of type {type(value).__name__}: "
                f"pass int({what}) if it is a whole number."
            ) from None
    if value < 0 or (value == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "1 or more"
        raise ValueError(f"{what} must be {bound}, got {value}.")
    return value


def nearest_valid_sizes(n: int, multiple: int) -> tuple[int, ...]:
    """The multiples of ``multiple`` nearest to ``n``.

    Returns ``(n,)`` when ``n`` is already a multiple, otherwise the multiple
    below and the one above (only the one above when the one below is 0).

    >>> nearest_valid_sizes(100, 16)
    (96, 112)
    >>> nearest_valid_sizes(128, 16)
    (128,)
    """
    n = _check_positive_int(n, "n")
    multiple = _check_positive_int(multiple, "multiple")
    if n % multiple == 0:
        return (n,)
    below = (n // multiple) * multiple
    above = below + multiple
    return (above,) if below == 0 else (below, above)


def check_input_size(height: int, width: int, depth: int) -> None:
    """Raise ValueError unless a U-Net of ``depth`` accepts a ``height`` x ``width`` image.

    Each of the ``depth`` max-pooling steps halves the size, and the decoder
    doubles it again, so both sides must be divisible by ``2**depth`` for the
    skip connections to line up. The message names the nearest valid sizes.

    >>> check_input_size(128, 96, depth=4)      # fine: returns None
    >>> check_input_size(100, 100, depth=4)     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: U-Net of depth 4 needs height and width divisible by 16; 100x100 is not. ...
    """
    depth = _check_positive_int(depth, "depth", allow_zero=True)
    height = _check_positive_int(height, "height")
    width = _check_positive_int(width, "width")
    multiple = 2**depth
    if height % multiple == 0 and width % multiple == 0:
        return
    bad = [n for n in (height, width) if n % multiple]
    suggestions = []
    for n in dict.fromkeys(bad):  # unique, in order
        suggestions.extend(s for s in nearest_valid_sizes(n, multiple) if s not in suggestions)
    if len(suggestions) == 1:
        nearest = str(suggestions[0])
    else:
        nearest = ", ".join(str(s) for s in suggestions[:-1]) + f" or {suggestions[-1]}"
    raise ValueError(
        f"U-Net of depth {depth} needs height and width divisible by {multiple}; "
        f"{height}x{width} is not. Nearest valid sizes: {nearest} (crop or pad the image)."
    )


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis.

    ``floor((n + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``
    (the formula of ``torch.nn.Conv2d``; Keras ``padding="valid"`` is
    ``padding=0``, ``padding="same"`` with stride 1 is ``padding=dilation*(kernel-1)//2``
    for odd kernels).

    >>> output_size(64, kernel=3, padding=1)
    64
    >>> output_size(64, kernel=2, stride=2)
    32
    """
    n = _check_positive_int(n, "n")
    kernel = _check_positive_int(kernel, "kernel")
    stride = _check_positive_int(stride, "stride")
    padding = _check_positive_int(padding, "padding", allow_zero=True)
    dilation = _check_positive_int(dilation, "dilation")
    effective = dilation * (kernel - 1) + 1
    if n + 2 * padding < effective:
        raise ValueError(
            f"The input ({n} + 2*{padding} padding) is smaller than the kernel's extent "
            f"{effective} (kernel {kernel}, dilation {dilation}): use a larger input or more padding."
        )
    return (n + 2 * padding - effective) // stride + 1


def transposed_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
) -> int:
    """Output length of a transposed convolution along one axis.

    ``(n - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1``
    (the formula of ``torch.nn.ConvTranspose2d``).

    >>> transposed_output_size(32, kernel=2, stride=2)
    64
    >>> transposed_output_size(32, kernel=3, stride=2, padding=1, output_padding=1)
    64
    """
    n = _check_positive_int(n, "n")
    kernel = _check_positive_int(kernel, "kernel")
    stride = _check_positive_int(stride, "stride")
    padding = _check_positive_int(padding, "padding", allow_zero=True)
    dilation = _check_positive_int(dilation, "dilation")
    output_padding = _check_positive_int(output_padding, "output_padding", allow_zero=True)
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding ({output_padding}) must be smaller than stride ({stride}) or "
            f"dilation ({dilation}): it only picks one of the sizes a strided convolution maps to."
        )
    size = (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if size < 1:
        raise ValueError(f"padding {padding} is too large: the output would have size {size}.")
    return size


def _layer_tuple(layer, index: int) -> tuple[int, int, int]:
    try:
        values = tuple(layer)
    except TypeError:
        raise TypeError(
            f"layer {index} is {layer!r}: give each layer as a tuple (kernel, stride) or "
            "(kernel, stride, dilation)."
        ) from None
    if len(values) == 2:
        values = values + (1,)
    if len(values) != 3:
        raise ValueError(
            f"layer {index} is {layer!r}: give each layer as a tuple (kernel, stride) or "
            "(kernel, stride, dilation)."
        )
    kernel, stride, dilation = values
    return (
        _check_positive_int(kernel, f"kernel of layer {index}"),
        _check_positive_int(stride, f"stride of layer {index}"),
        _check_positive_int(dilation, f"dilation of layer {index}"),
    )


def receptive_field_table(layers) -> list[dict]:
    """Receptive field after each layer of a stack.

    ``layers`` is a list of ``(kernel, stride, dilation)`` (or ``(kernel, stride)``)
    tuples, first layer first. Returns one dict per layer with ``rf`` (receptive
    field in input pixels after that layer) and ``jump`` (distance in input
    pixels between neighbouring outputs after that layer)::

        rf_l   = rf_{l-1} + dilation_l * (kernel_l - 1) * jump_{l-1}
        jump_l = jump_{l-1} * stride_l          (rf_0 = jump_0 = 1)
    """
    rows = []
    rf, jump = 1, 1
    for index, layer in enumerate(layers):
        kernel, stride, dilation = _layer_tuple(layer, index)
        rf = rf + dilation * (kernel - 1) * jump
        jump = jump * stride
        rows.append({"kernel": kernel, "stride": stride, "dilation": dilation, "rf": rf, "jump": jump})
    return rows


def receptive_field(layers) -> int:
    """Receptive field (in input pixels, along one axis) of a stack of layers.

    ``layers``: list of ``(kernel, stride, dilation)`` tuples (dilation may be
    left out), first layer first; pooling counts as a layer too.

    >>> receptive_field([(3, 1, 1), (3, 1, 1)])          # two 3x3 convs
    5
    >>> receptive_field([(3, 1), (3, 1), (2, 2), (3, 1), (3, 1)])
    14
    """
    rows = receptive_field_table(list(layers))
    return rows[-1]["rf"] if rows else 1


# ---------------------------------------------------------------- FCN and DeepLab (both frameworks)
def stage_filters(base_filters: int, num_stages: int = 5) -> list[int]:
    """Filters per backbone stage: ``base * (1, 2, 4, 8, 8)`` (VGG doubles, then stays)."""
    return [base_filters * min(2**k, 8) for k in range(num_stages)]


def check_divisible(height, width, multiple: int, model: str = "FCN") -> None:
    """Raise ValueError unless height and width are multiples of ``multiple`` (None = any size, checked later).

    FCN pools 5 times (multiple 32); DeepLab needs multiples of its output stride.
    The message names the nearest valid sizes.
    """
    bad = [int(n) for n in (height, width) if n is not None and int(n) % multiple]
    if not bad:
        return
    suggestions = []
    for n in dict.fromkeys(bad):
        suggestions += [s for s in nearest_valid_sizes(n, multiple) if s not in suggestions]
    raise ValueError(
        f"{model} needs height and width divisible by {multiple}; {height}x{width} is not. "
        f"Nearest valid sizes: {', '.join(map(str, suggestions))} (crop, pad or resize the image)."
    )


def bilinear_kernel(kernel_size: int) -> np.ndarray:
    """2-D bilinear interpolation filter of the FCN paper, float32 (k, k).

    A transposed convolution with stride ``s``, kernel ``2*s`` and padding ``s//2``
    whose weight is this filter on the diagonal (channel i -> channel i)
    upsamples by ``s`` with bilinear interpolation (up to the image border).
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = np.arange(kernel_size, dtype=np.float64)
    filt = 1 - np.abs(og - center) / factor
    return np.outer(filt, filt).astype(np.float32)


OUTPUT_STRIDES = (8, 16)


def stage_dilations(output_stride: int) -> list[tuple[bool, int]]:
    """``(pool_before, dilation)`` for stages 1..5 at ``output_stride`` 16 or 8.

    Without atrous convolution every stage starts with a 2x2 max pooling
    (stride 32 after stage 5, as in VGG/FCN). DeepLab removes the pooling of
    the last stage (OS 16) or the last two stages (OS 8) and doubles the
    dilation instead, so the receptive field grows as if the pooling were there.

    >>> stage_dilations(16)
    [(True, 1), (True, 1), (True, 1), (True, 1), (False, 2)]
    >>> stage_dilations(8)
    [(True, 1), (True, 1), (True, 1), (False, 2), (False, 4)]
    """
    if isinstance(output_stride, bool) or output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be 16 or 8, got {output_stride!r}.")
    plan, stride, dilation = [], 1, 1
    for _ in range(5):
        if stride * 2 <= output_stride:
            stride *= 2
            plan.append((True, dilation))
        else:
            dilation *= 2
            plan.append((False, dilation))
    return plan
