"""Save the example models with a real TensorFlow.

Run it with the Python of an environment that has TensorFlow; it saves every model
that environment can write into OUTDIR and prints one line per file:

    python examples/make_models.py OUTDIR

Keras 2 (TF <= 2.15) writes the legacy HDF5 files, with tensorflow-addons installed
it also writes the Addons model, Keras 3 (TF >= 2.16) writes the `.keras` files.
The `ResidualBlock` layer and `my_custom_loss` (from custom_objects.py beside this file)
come from the article the project grew from; `ResidualBlock` is saved with as many filters
as its input has channels, since the article's version adds a 3-channel input to a
32-channel output and cannot be built.
"""

import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from custom_objects import ResidualBlock, my_custom_loss  # one definition, for saving and loading

keras = tf.keras
KERAS_MAJOR = int(keras.__version__.split(".")[0]) if hasattr(keras, "__version__") else 2


def residual_model():
    inputs = keras.layers.Input(shape=(8, 8, 4))
    x = ResidualBlock(4, 3)(inputs)
    x = ResidualBlock(4, 3)(x)
    return keras.models.Model(inputs=inputs, outputs=x)


def custom_loss_model():
    inputs = keras.layers.Input(shape=(10,))
    outputs = keras.layers.Dense(1)(inputs)
    model = keras.models.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss=my_custom_loss)
    return model


def dense_model():
    inputs = keras.layers.Input(shape=(6,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.models.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def lambda_model():
    inputs = keras.layers.Input(shape=(4,))
    outputs = keras.layers.Lambda(lambda t: t * 2.0 + 1.0)(inputs)
    return keras.models.Model(inputs=inputs, outputs=outputs)


def addons_model(tfa):
    inputs = keras.layers.Input(shape=(8, 8, 4))
    x = tfa.layers.GroupNormalization(groups=2)(inputs)
    outputs = keras.layers.Conv2D(2, 3, padding="same")(x)
    return keras.models.Model(inputs=inputs, outputs=outputs)


def sequential_model():
    return keras.Sequential([keras.layers.Input(shape=(5, 4)), keras.layers.TimeDistributed(keras.layers.Dense(2)), keras.layers.LSTM(3)])


def nested_model():
    inner = keras.Sequential([keras.layers.Dense(3)], name="inner")
    inputs = keras.layers.Input(shape=(4,))
    return keras.models.Model(inputs, keras.layers.Dense(1)(inner(inputs)))


def savedmodel_model():
    """Custom layer, Lambda, nested Sequential and custom loss, in one SavedModel folder."""
    inputs = keras.layers.Input(shape=(8, 8, 4))
    x = ResidualBlock(4, 3)(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    outputs = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(2)], name="head")(x)
    model = keras.models.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=my_custom_loss, metrics=["mae"])
    return model


def save(model, outdir, name):
    path = os.path.join(outdir, name)
    model.save(path)
    print(path)


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    tf.random.set_seed(0)
    np.random.seed(0)
    if KERAS_MAJOR >= 3:
        save(dense_model(), outdir, "dense_keras3.keras")
        save(residual_model(), outdir, "residual_block_keras3.keras")
        save(sequential_model(), outdir, "sequential_keras3.keras")
        save(nested_model(), outdir, "nested_keras3.keras")
        return
    save(dense_model(), outdir, "dense.h5")
    save(residual_model(), outdir, "residual_block.h5")
    save(custom_loss_model(), outdir, "custom_loss.h5")
    save(lambda_model(), outdir, "lambda_layer.h5")
    save(sequential_model(), outdir, "sequential.h5")
    save(nested_model(), outdir, "nested.h5")
    save(savedmodel_model(), outdir, "residual_savedmodel")  # no extension: Keras 2 writes a SavedModel
    try:
        import tensorflow_addons as tfa
    except ImportError:
        return
    save(addons_model(tfa), outdir, "addons_groupnorm.h5")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
