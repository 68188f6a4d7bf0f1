"""Per-kernel golden tests: single-op int8 models built here with TensorFlow, compiled to C,
built with host gcc and compared byte for byte with TFLite's reference kernels."""

from __future__ import annotations

import pytest

from tests.compiler.conftest import to_int8
from tinyforge.compiler.importer import load_tflite
from tinyforge.compiler.verify import verify
from tinyforge.errors import InvalidArgument

tf = pytest.importorskip("tensorflow")
L = tf.keras.layers


def _model(shape, build):
    inp = tf.keras.Input(shape, batch_size=1)
    return tf.keras.Model(inp, build(inp))


def _conv(f, k, s=1, p="same", d=1, act=None):
    return lambda x: L.Conv2D(f, k, strides=s, padding=p, dilation_rate=d, activation=act)(x)


def _dw(k, s=1, p="same", d=1, m=1, act=None):
    return lambda x: L.DepthwiseConv2D(k, strides=s, padding=p, dilation_rate=d,
                                       depth_multiplier=m, activation=act)(x)


def _two(merge):
    def build(x):
        a = L.Conv2D(4, 3, padding="same")(x)
        b = L.Conv2D(4, 1, activation="relu")(x)
        return merge([a, b])
    return build


# name: (input shape, layer builder, calibration range)
CASES = {
    "conv3x3_same_relu": ((9, 11, 3), _conv(8, 3, act="relu"), (-4, 4)),
    "conv5x3_s2_valid": ((12, 10, 4), _conv(6, (5, 3), s=2, p="valid"), (-4, 4)),
    "conv_dilated_relu6": ((10, 10, 3), _conv(5, 3, d=2, act="relu6"), (-4, 4)),
    "conv_s3x2_same": ((7, 9, 2), _conv(4, (2, 4), s=(3, 2)), (-4, 4)),
    "conv1x1_zp_min": ((3, 3, 16), _conv(7, 1), (0, 10)),          # input zero point -128
    "conv_zp_max": ((6, 5, 2), _conv(3, 3, act="relu"), (-10, -0.1)),  # input zero point 127
    "dw3x3_same": ((9, 8, 6), _dw(3, act="relu"), (-4, 4)),
    "dw_s2_valid_mult2": ((11, 9, 3), _dw((3, 5), s=2, p="valid", m=2), (-4, 4)),
    "dw_dilated": ((10, 10, 4), _dw(3, d=(2, 3), act="relu6"), (-2, 6)),
    "dense_relu": ((37,), lambda x: L.Dense(13, activation="relu")(x), (-4, 4)),
    "dense_softmax": ((20,), lambda x: L.Softmax()(L.Dense(9)(x)), (-4, 4)),
    "avgpool_2x2": ((8, 8, 5), lambda x: L.AveragePooling2D(2)(x), (-4, 4)),
    "avgpool_3x3_s2_same": ((9, 7, 3), lambda x: L.AveragePooling2D(3, 2, "same")(x), (-4, 4)),
    "maxpool_3x3_s2_same": ((9, 7, 3), lambda x: L.MaxPooling2D(3, 2, "same")(x), (-4, 4)),
    "maxpool_2x2_valid": ((8, 6, 4), lambda x: L.MaxPooling2D(2)(x), (-4, 4)),
    "add": ((6, 6, 3), _two(L.Add()), (-4, 4)),
    "mul": ((6, 6, 3), _two(L.Multiply()), (-2, 2)),
    "concat": ((5, 6, 3), _two(L.Concatenate()), (-4, 4)),
    "pad": ((5, 4, 3), lambda x: L.ZeroPadding2D(((1, 2), (0, 3)))(L.Conv2D(3, 1)(x)),
            (-4, 4)),
    "mean_global": ((5, 7, 6), lambda x: L.GlobalAveragePooling2D()(L.Conv2D(6, 1)(x)),
                    (-3, 5)),
    "logistic": ((5, 5, 2), lambda x: L.Activation("sigmoid")(L.Conv2D(4, 3)(x)), (-4, 4)),
    "tanh": ((5, 5, 2), lambda x: L.Activation("tanh")(L.Conv2D(4, 3)(x)), (-4, 4)),
}

_CACHE: dict[str, bytes] = {}


def _tflite(name: str) -> bytes:
    if name not in _CACHE:
        shape, build, (lo, hi) = CASES[name]
        tf.keras.utils.set_random_seed(len(name))
        _CACHE[name] = to_int8(_model(shape, build), shape, lo, hi)
    return _CACHE[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_bit_exact_host(name, tmp_path):
    model = _tflite(name)
    ops = {op.name for op in load_tflite(model).ops}
    rep = verify(model, tmp_path / "c", "host", n_random=24, seed=len(name), measure=False)
    assert rep.bit_exact, (ops, rep.first_mismatch)
    assert rep.compared == 24


def test_float_io_quantize_dequantize(tmp_path):
    shape = (6, 6, 2)
    tf.keras.utils.set_random_seed(3)
    model = to_int8(_model(shape, _conv(3, 3, act="relu")), shape, float_io=True)
    ops = [op.name for op in load_tflite(model).ops]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    rep = verify(model, tmp_path / "c", "host", n_random=16, measure=False)
    assert rep.bit_exact, rep.first_mismatch


def test_unsupported_op_is_named(tmp_path):
    shape = (4, 4, 2)
    model = to_int8(_model(shape, lambda x: L.LeakyReLU(0.2)(L.Conv2D(2, 1)(x))), shape)
    with pytest.raises(InvalidArgument) as err:
        verify(model, tmp_path / "c", "host", n_random=2)
    msg = str(err.value)
    assert "LEAKY_RELU" in msg and "operator #1" in msg and "CONV_2D" in msg
    assert err.value.field == "model"
    assert not (tmp_path / "c").exists()  # nothing written


def test_corrupt_model_rejected():
    with pytest.raises(InvalidArgument):
        load_tflite(b"\x00" * 64)


# Conv / depthwise / FC cases for the Cortex-M4F DSP fast paths: relu6 clamps (the kernels'
# non-SSAT output branch), odd channel counts (tails), padding, strides, dilations.
M4F_CASES = ["conv3x3_same_relu", "conv_dilated_relu6", "conv_s3x2_same", "conv_zp_max",
             "dw3x3_same", "dw_dilated", "dense_relu"]


@pytest.mark.toolchain
@pytest.mark.parametrize("name", M4F_CASES)
def test_kernel_bit_exact_cortex_m4f_fast_and_portable(name, tmp_path):
    """The DSP kernels (folded bias, SMLAL requantization, SSAT or clamp) and the portable
    kernels reading the folded bias both equal TFLite's reference on the emulated M4F."""
    import shutil

    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm are not installed (make install)")
    model = _tflite(name)
    for tag, defines in (("fast", None), ("portable", ["-DTF_NN_PORTABLE"])):
        rep = verify(model, tmp_path / tag, "cortex-m4f", n_random=16, seed=len(name),
                     measure=False, defines=defines)
        assert rep.bit_exact, (tag, rep.first_mismatch)
