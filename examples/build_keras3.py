"""A build script for `harness crossload` on Keras 3 backends: the same three models saved
by whichever backend the cell runs (KERAS_BACKEND), to load on every other backend.

    harness crossload matrices/keras3-backends.yaml --build examples/build_keras3.py

It imports `keras` only: a Functional model, a custom layer written with keras.ops (which
runs on every backend) and registered for serialization, and a model with a Lambda (its
Python code is stored in the file, so loading it needs safe_mode=False: --trust-models).

Imported rather than run, it is the custom objects module of the files it saves
(`load: {custom_objects: examples/build_keras3.py}`): it defines CUSTOM_OBJECTS and saves
nothing. The build script must hold the layer itself: crossload mounts it alone in the cell.
"""

import os
import sys

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="harness_examples")
class Scale(keras.layers.Layer):
    """y = x * w + b with a learned scale: keras.ops only."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="random_normal", name="w")
        self.b = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="b")

    def call(self, x):
        return ops.add(ops.multiply(x, self.w), self.b)


CUSTOM_OBJECTS = {"harness_examples>Scale": Scale}


def save(out):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden)).save(os.path.join(out, "functional.keras"))
    keras.Model(inputs, keras.layers.Dense(2)(Scale()(hidden))).save(os.path.join(out, "custom_ops.keras"))
    doubled = keras.layers.Lambda(lambda x: x * 2.0)(hidden)
    keras.Model(inputs, keras.layers.Dense(2)(doubled)).save(os.path.join(out, "lambda.keras"))


if __name__ == "__main__":
    save(sys.argv[1])
