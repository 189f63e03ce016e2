"""lamb: a Keras image model in, a verified TensorFlow Lite artifact that runs on AWS Lambda out."""

__version__ = "0.1.0"
