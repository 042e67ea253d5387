"""harness: in which environments does a saved Keras model still load, and why not."""

__version__ = "0.1.0"
