"""torch's dynamic int8 arithmetic in numpy: EasyOCR's recogniser tail (BiLSTM ×2 + linear) exactly as it runs on a CPU.

Why this exists: on a CPU ``easyocr.Reader`` (``quantize=True``, its default) runs its recogniser's LSTMs and
linear layers through ``torch.quantization.quantize_dynamic``: int8 weights (per-tensor, symmetric) and inputs
quantised on every call to uint8 over their own min/max with torch's ``reduce_range`` (0..127). An fp32 export
of the same layers reads differently, so the torch-free reader replays that arithmetic here with the int8 weights
torch made (:mod:`core.stages.ocr_recogniser_onnx` stores them at ``m2t prepare``); logits agree with torch's to
~1e-6. The integer products run as float32 matmuls: ``|x_q - zp| ≤ 127``, ``|w_q| ≤ 127`` and at most 512 terms
keep every partial sum below 2**24, where float32 adds integers exactly.

Bit for bit, because the recurrence amplifies ulps: a hidden state one ulp off now and then lands on the other
side of a rounding step when it is quantised, and a line of 200 steps then read with a confidence 2e-3 off. So
fbgemm's output step is a fused multiply-add (emulated in float64), the gates' sigmoid is ATen's vectorised
``1 / (1 + exp(-x))`` with SLEEF's ``expf`` (u10, AVX2 build: FMA), replayed here operation by operation, and
``tanh`` is rounded from float64 (SLEEF's tanhf differs from that in ~0.1 % of values, by one ulp).

What torch does, and this replays (ATen ``QuantUtils.h`` ``ChooseQuantizationParams``, fbgemm's ``Quantize``,
ATen ``RNN.cpp``): each LSTM direction projects the whole sequence through its input weights in one quantised
call, then steps through time, quantising the hidden state on every step; the BiLSTM's output linear and the
final prediction linear each quantise their whole input at once. Quantisation parameters depend on the whole
batch, so crops must be run one at a time, as EasyOCR does on a CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SMALL_SCALE = 6.1e-5  # ATen's SMALL_SCALE_THRESHOLD
QMIN, QMAX = 0, 127  # uint8 with reduce_range, what DynamicQuantizedLinear/LSTM ask fbgemm for
# SLEEF's expf (xexpf, sleefsimdsp.c): ln 2 split in two, and the polynomial's coefficients
R_LN2 = np.float32(1.442695040888963407359924681001892137426645954152985934135449406931)
L2U, L2L = np.float32(0.693145751953125), np.float32(1.428606765330187045e-06)
EXP_POLY = tuple(np.float32(c) for c in (0.00139304355252534151077271, 0.00833336077630519866943359,
                                         0.0416664853692054748535156, 0.166666671633720397949219, 0.5))


class QLinear(NamedTuple):
    weight: np.ndarray  # int8 values as float32, (out, in)
    scale: np.float32  # per-tensor weight scale (zero point 0)
    bias: np.ndarray  # float32 (out,)


class QLstmDirection(NamedTuple):
    ih: QLinear  # (4H, in): gates i, f, g, o as torch orders them
    hh: QLinear  # (4H, H)


def qparams(x: np.ndarray) -> tuple[np.float32, int]:
    """Scale and zero point torch picks for a dynamic input: ATen's ChooseQuantizationParams with reduce_range."""
    low = np.float32(min(float(x.min()), 0.0))
    high = np.float32(max(float(x.max()), 0.0))
    scale = (float(high) - float(low)) / (QMAX - QMIN)  # double, as ATen computes it
    if np.float32(scale) == 0 or np.isinf(np.float32(1) / np.float32(scale)):
        scale = 0.1
    if scale < np.float32(SMALL_SCALE):
        small = float(np.float32(SMALL_SCALE))
        original = np.float32(scale)
        scale = small
        if low == 0:
            high = np.float32(small * (QMAX - QMIN))
        elif high == 0:
            low = np.float32(-small * (QMAX - QMIN))
        else:
            amplifier = np.float32(small / original)
            low, high = np.float32(low * amplifier), np.float32(high * amplifier)
    from_min, from_max = QMIN - float(low) / scale, QMAX - float(high) / scale
    error_min, error_max = abs(QMIN) - abs(float(low) / scale), abs(QMAX) - abs(float(high) / scale)
    zero = from_min if error_min < error_max else from_max
    zero_point = QMIN if zero < QMIN else QMAX if zero > QMAX else int(np.rint(zero))
    return np.float32(scale), zero_point


def fma(a: np.ndarray | np.float32, b: np.ndarray | np.float32, c: np.ndarray | np.float32) -> np.ndarray:
    """float32 ``a * b + c`` rounded once, as an FMA instruction does (the float64 product of two floats is exact)."""
    return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(np.float32)


def qlinear(x: np.ndarray, layer: QLinear) -> np.ndarray:
    """``torch.ops.quantized.linear_dynamic(x, w, reduce_range=True)``: quantise x over all of it, int8 matmul."""
    scale, zero_point = qparams(x)
    centred = np.clip(np.rint(x * (np.float32(1) / scale)) + zero_point, 0, 255) - zero_point
    out = centred.astype(np.float32) @ layer.weight.T  # integer-valued and exact, see the module docstring
    return fma(out, np.float32(scale * layer.scale), layer.bias)


def expf(d: np.ndarray) -> np.ndarray:
    """SLEEF's ``expf`` (u10), the exp ATen's vectorised float kernels call, operation by operation."""
    q = np.rint(d * R_LN2).astype(np.int32)
    qf = q.astype(np.float32)
    s = fma(qf, -L2U, d)
    s = fma(qf, -L2L, s)
    u = np.float32(0.000198527617612853646278381)
    for coefficient in EXP_POLY:
        u = fma(u, s, coefficient)
    u = np.ldexp(np.float32(1) + fma(s * s, u, s), q).astype(np.float32)
    u = np.where(d < -104, np.float32(0), u)
    return np.where(d > 100, np.float32(np.inf), u).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """ATen's vectorised float sigmoid: ``(0 - x).exp()``, plus one, reciprocal."""
    return np.float32(1) / (expf(np.float32(0) - x) + np.float32(1))


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x.astype(np.float64)).astype(np.float32)


def lstm_direction(x: np.ndarray, weights: QLstmDirection, reverse: bool) -> np.ndarray:
    """One direction of a dynamically quantised ``nn.LSTM(batch_first=True)``: (N, T, in) -> (N, T, H)."""
    n, steps, _ = x.shape
    hidden = weights.hh.weight.shape[1]
    projected = qlinear(np.ascontiguousarray(x.transpose(1, 0, 2)), weights.ih)  # (T, N, 4H): one call, as ATen
    h = np.zeros((n, hidden), np.float32)
    c = np.zeros((n, hidden), np.float32)
    out = np.empty((steps, n, hidden), np.float32)
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        gates = qlinear(h, weights.hh) + projected[t]
        sig = _sigmoid(gates)
        c = sig[:, hidden:2 * hidden] * c + sig[:, :hidden] * _tanh(gates[:, 2 * hidden:3 * hidden])
        h = sig[:, 3 * hidden:] * _tanh(c)
        out[t] = h
    return out.transpose(1, 0, 2)


def bilstm(x: np.ndarray, forward: QLstmDirection, backward: QLstmDirection, linear: QLinear) -> np.ndarray:
    """EasyOCR's ``BidirectionalLSTM``: both directions, concatenated, then its linear layer."""
    recurrent = np.concatenate([lstm_direction(x, forward, False), lstm_direction(x, backward, True)], axis=2)
    return qlinear(recurrent, linear)
