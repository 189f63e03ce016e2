"""Load Keras models and convert them to TensorFlow Lite."""
