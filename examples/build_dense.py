"""A build script for `harness crossload`: save the same small model in every format.

`harness crossload MATRIX --build examples/build_dense.py` runs it once in every cell of
the matrix (with that cell's TensorFlow), as `python build_dense.py OUTDIR`, and then loads
every file it saved in every cell.
"""

import os
import sys

import tensorflow as tf

out = sys.argv[1]
tf.random.set_seed(0)
inputs = tf.keras.layers.Input(shape=(6,))
hidden = tf.keras.layers.Dense(8, activation="relu")(inputs)
outputs = tf.keras.layers.Dense(2, activation="softmax")(hidden)
model = tf.keras.models.Model(inputs, outputs)
model.compile(optimizer="adam", loss="categorical_crossentropy")
model.save(os.path.join(out, "dense.h5"))
model.save(os.path.join(out, "dense.keras"))
