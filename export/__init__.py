"""Training, evaluation and ONNX export of the HematoVision classifier (TensorFlow/Keras side only)."""
