"""The custom objects of the example models, as a user would ship them beside a model.

`harness run` imports this file inside each cell when the matrix names it
(`load.custom_objects`), then retries a failed load inside
`keras.utils.custom_object_scope(CUSTOM_OBJECTS)` to prove the fix. It is the
article's `ResidualBlock` (with a `get_config`, which saving it needs) and
`my_custom_loss`.
"""

import tensorflow as tf


class ResidualBlock(tf.keras.layers.Layer):
    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.conv1 = tf.keras.layers.Conv2D(filters, kernel_size, padding="same")
        self.conv2 = tf.keras.layers.Conv2D(filters, kernel_size, padding="same")
        self.bn1 = tf.keras.layers.BatchNormalization()
        self.bn2 = tf.keras.layers.BatchNormalization()
        self.add = tf.keras.layers.Add()

    def call(self, inputs):
        x = self.conv1(inputs)
        x = self.bn1(x)
        x = tf.nn.relu(x)
        x = self.conv2(x)
        x = self.bn2(x)
        residual = self.add([inputs, x])
        return tf.nn.relu(residual)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "kernel_size": self.kernel_size})
        return config


def my_custom_loss(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))


CUSTOM_OBJECTS = {"ResidualBlock": ResidualBlock, "my_custom_loss": my_custom_loss}
