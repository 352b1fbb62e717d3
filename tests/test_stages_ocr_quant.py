"""``core.stages.ocr_quant``: torch's dynamic int8 linear, sigmoid and quantised LSTM, bit for bit (or within ulps)."""

from __future__ import annotations

import numpy as np
import pytest

from core.stages import ocr_quant

torch = pytest.importorskip("torch")


def _qlinear_pair(rng: np.random.Generator, out: int, inp: int) -> tuple:
    w = torch.from_numpy(rng.normal(0, 0.1, (out, inp)).astype(np.float32))
    b = torch.from_numpy(rng.normal(0, 0.1, out).astype(np.float32))
    qw = torch.quantize_per_tensor(w, float(w.abs().max()) / 127.5, 0, torch.qint8)
    layer = ocr_quant.QLinear(qw.int_repr().numpy().astype(np.float32), np.float32(qw.q_scale()), b.numpy())
    return torch.ops.quantized.linear_prepack(qw, b), layer


def test_qlinear_equals_torchs_dynamic_linear_bit_for_bit() -> None:
    rng = np.random.default_rng(1)
    packed, layer = _qlinear_pair(rng, 1024, 256)
    for shape, spread in (((1, 256), 1.0), ((40, 256), 3.0), ((1, 256), 1e-7), ((3, 256), 0.0)):
        x = (np.tanh(rng.normal(0, 1, shape)) * spread).astype(np.float32)
        expected = torch.ops.quantized.linear_dynamic(torch.from_numpy(x), packed, True).numpy()
        np.testing.assert_array_equal(ocr_quant.qlinear(x, layer), expected)


def test_sigmoid_equals_atens_vectorised_one() -> None:
    x = np.random.default_rng(2).normal(0, 4, 200_000).astype(np.float32)
    np.testing.assert_array_equal(ocr_quant._sigmoid(x), torch.from_numpy(x).sigmoid().numpy())


def test_bilstm_equals_a_dynamically_quantised_torch_bilstm() -> None:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(32, 16, bidirectional=True, batch_first=True)
    linear = torch.nn.Linear(32, 16)
    net = torch.nn.ModuleDict({"rnn": lstm, "linear": linear})
    torch.quantization.quantize_dynamic(net, dtype=torch.qint8, inplace=True)
    state = net["rnn"]._weight_bias()

    def layer(weight, bias) -> ocr_quant.QLinear:
        return ocr_quant.QLinear(weight.int_repr().numpy().astype(np.float32), np.float32(weight.q_scale()),
                                 bias.detach().numpy())

    def direction(suffix: str) -> ocr_quant.QLstmDirection:
        return ocr_quant.QLstmDirection(*(layer(state["weight"][f"weight_{g}_l0{suffix}"],
                                                state["bias"][f"bias_{g}_l0{suffix}"]) for g in ("ih", "hh")))

    directions = [direction(""), direction("_reverse")]
    w, b = torch.ops.quantized.linear_unpack(net["linear"]._packed_params._packed_params)
    x = np.random.default_rng(3).normal(0, 1, (1, 50, 32)).astype(np.float32)
    with torch.no_grad():
        expected = net["linear"](net["rnn"](torch.from_numpy(x))[0]).numpy()
    got = ocr_quant.bilstm(x, *directions, layer(w, b))
    assert np.abs(got - expected).max() < 1e-5
