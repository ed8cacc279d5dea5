"""initlab.keras: get() gives serializable Keras initializers; init() picks each layer's scheme
from the activation its output reaches, writes nothing on failure, and the result trains."""

import json
import math
import os

import numpy as np
import pytest
from scipy import stats

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras (dev extra) is needed for initlab.keras")

import initlab.keras as ik  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
KS_P = 1e-4
L = keras.layers


def numpy(x):
    return keras.ops.convert_to_numpy(x).astype(np.float64)


def test_get_is_a_keras_initializer_that_round_trips_its_config():
    init = ik.get("VarianceScaling(scale=2.0, mode='fan_out', distribution='uniform')", seed=4)
    assert isinstance(init, keras.initializers.Initializer)
    clone = type(init).from_config(init.get_config())
    np.testing.assert_array_equal(numpy(init((3, 3, 8, 16))), numpy(clone((3, 3, 8, 16))))
    # In a layer's config, through Keras's own (de)serialization.
    layer = L.Dense(16, kernel_initializer=init)
    config = keras.saving.serialize_keras_object(layer)
    rebuilt = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
    assert isinstance(rebuilt.kernel_initializer, ik.Initializer)
    np.testing.assert_array_equal(numpy(rebuilt.kernel_initializer((8, 16))),
                                  numpy(init((8, 16))))  # fmt: skip


def test_get_accepts_configs_instances_and_initlab_names():
    a = ik.get({"class_name": "HeNormal", "config": {"seed": 3}})
    b = ik.get(keras.initializers.HeNormal(seed=3))
    c = ik.get("he_normal", seed=3)
    for x in (a, b):
        np.testing.assert_array_equal(numpy(x((32, 16))), numpy(c((32, 16))))
    assert ik.get("delta_orthogonal").scheme.name == "delta_orthogonal"
    assert ik.get("kaiming_normal_").scheme.distribution == "normal"  # not a Keras name
    with pytest.raises(TypeError, match="identifier=3"):
        ik.get(3)
    with pytest.raises(ValueError, match="Did you mean 'he_normal'"):
        ik.get("he_normla")


def test_seed_article_001_he_normal():
    """Seed 001: Dense(128, activation='relu', kernel_initializer='he_normal'). With initlab's
    initializer the kernel is Keras's he_normal: N(0, 2/fan_in) truncated at 2 sigma of its
    parent, std corrected."""
    model = keras.Sequential([
        keras.Input((512,)),
        L.Dense(128, activation="relu", kernel_initializer=ik.get("he_normal", seed=0)),
    ])  # fmt: skip
    w = numpy(model.layers[0].kernel).ravel()
    parent = math.sqrt(2 / 512) / 0.87962566103423978
    assert stats.kstest(w, stats.truncnorm(-2, 2, scale=parent).cdf).pvalue > KS_P
    keras_own = numpy(keras.initializers.HeNormal(seed=0)((512, 128))).ravel()
    assert stats.ks_2samp(w, keras_own).pvalue > KS_P
    report = ik.init(model, seed=0)  # and "auto" says He for it, as the article does
    assert report[model.layers[0].kernel.path].rule == "he"


def _functional():
    x = keras.Input((16, 16, 3))
    h = L.Conv2D(8, 3, name="c1")(x)
    h = L.BatchNormalization(name="bn")(h)
    h = L.Activation("relu", name="act")(h)
    h = L.Conv2D(16, 3, groups=2, name="c2")(h)
    h = L.LeakyReLU(negative_slope=0.2, name="lrelu")(h)
    h = L.Flatten(name="flat")(h)
    h = L.Dense(32, activation="tanh", name="d1")(h)
    h = L.Dropout(0.1, name="drop")(h)
    h = L.Dense(32, activation="selu", name="d2")(h)
    h = L.Dense(32, name="d3")(h)
    h = L.Activation("gelu", name="gelu")(h)
    out = L.Dense(10, activation="softmax", name="out")(h)
    return keras.Model(x, out, name="net")


def test_auto_reads_activations_in_a_functional_model():
    model = _functional()
    report = ik.init(model, seed=1)
    rows = {r.parameter: r for r in report.rows}
    expect = {
        "c1": ("relu", "he", math.sqrt(2), 27),
        "c2": ("leaky_relu", "he", math.sqrt(2 / 1.04), 36),
        "d1": ("tanh", "xavier", 5 / 3, None),
        "d2": ("selu", "lecun", 1.0, 32),
        "d3": ("gelu", "numeric", None, 32),
        "out": (None, "linear", 1.0, 32),
    }
    for layer, (activation, rule, gain, fan_in) in expect.items():
        row = rows[f"{layer}/kernel"]
        assert (row.activation, row.rule) == (activation, rule), row
        if gain is not None:
            assert row.gain == pytest.approx(gain, rel=1e-9)
        if fan_in is not None:
            assert row.fan_in == fan_in
            assert row.std == pytest.approx(row.gain / math.sqrt(fan_in), rel=1e-9)
        w = numpy(model.get_layer(layer).kernel)
        assert w.std() == pytest.approx(row.std, rel=0.1)
        assert row.measured_std == pytest.approx(w.std(), rel=1e-5)
    assert rows["c1/kernel"].follows == "bn -> act"
    assert rows["c2/kernel"].fan_out == 9 * 8  # grouped: out / groups * k
    assert rows["bn/gamma"].rule == "norm" and rows["c1/bias"].rule == "bias"
    assert np.all(numpy(model.get_layer("c1").bias) == 0)
    data = json.loads(report.to_json())
    assert data["seed"] == 1 and len(data["rows"]) == len(report)
    assert max(len(line) for line in str(report).splitlines()) <= 80


def test_auto_in_sequential_with_activation_layers_and_same_seed_same_values():
    def build():
        return keras.Sequential([keras.Input((20,)), L.Dense(30, name="a"), L.ReLU(name="r"),
                                 L.Dense(30, name="b"), L.Activation("sigmoid"),
                                 L.Dense(2, name="c")], name="seq")  # fmt: skip

    m1, m2 = build(), build()
    r1 = ik.init(m1, seed=7)
    ik.init(m2, seed=7)
    assert [r1["seq/a/kernel"].rule, r1["seq/b/kernel"].rule, r1["seq/c/kernel"].rule] == [
        "he", "xavier", "linear"]  # fmt: skip
    for v1, v2 in zip(m1.weights, m2.weights, strict=True):
        np.testing.assert_array_equal(numpy(v1), numpy(v2))


def test_model_wide_scheme_uses_keras_spelling_and_layer_fans():
    model = keras.Sequential([keras.Input((8, 8, 4)), L.Conv2D(6, 3, name="c")], name="m")
    report = ik.init(model, "he_normal", seed=0)
    row = report["m/c/kernel"]
    assert row.rule == "model-wide" and "truncated_normal" in row.scheme
    assert row.std == pytest.approx(math.sqrt(2 / 36))


def test_failed_init_leaves_the_model_unchanged():
    model = keras.Sequential([keras.Input((8, 8, 4)), L.Conv2D(6, 3), L.Flatten(),
                              L.Dense(5)])  # fmt: skip
    before = [numpy(v) for v in model.weights]
    with pytest.raises(ValueError, match=r"nothing was changed.*'eye' needs a 2-D"):
        ik.init(model, "eye", seed=0)  # fits the Dense kernel, not the Conv2D one
    for old, v in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, numpy(v))
    with pytest.raises(ValueError, match="not built"):
        ik.init(keras.Sequential([L.Dense(3)]))
    with pytest.raises(ValueError, match="distribution='gaussian'"):
        ik.init(model, distribution="gaussian")


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split((x / 16.0).astype("float32"), y, test_size=0.3, random_state=0)


def test_keras_model_initialized_by_initlab_trains_on_digits():
    """The fast version of benchmarks/keras_digits.py: a ReLU MLP initialized by
    initlab.keras.init learns scikit-learn's digits in 3 epochs of SGD with momentum."""
    keras.utils.set_random_seed(0)
    x_train, x_test, y_train, y_test = _digits()
    model = keras.Sequential([keras.Input((64,)), L.Dense(64, activation="relu"),
                              L.Dense(64, activation="relu"), L.Dense(10)])  # fmt: skip
    report = ik.init(model, seed=0)
    assert [r.rule for r in report.rows if r.parameter.endswith("kernel")] == [
        "he", "he", "linear"]  # fmt: skip
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])  # fmt: skip
    history = model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.9
