"""MixStyle (Zhou et al., "Domain Generalization with MixStyle", ICLR 2021) as a Keras layer, for the head's training.

In training, with probability `probability` per example, the feature map's per-channel mean and standard deviation
are replaced by lambda x its own + (1 - lambda) x those of another example of the batch (a random permutation),
lambda ~ Beta(alpha, alpha): the content stays, the "style" (for a smear photo, much of the stain) is mixed between
images and labs. At inference it is the identity, and export/train.py keeps it out of the exported classifier.
"""

from __future__ import annotations

import keras

EPSILON = 1e-6


class MixStyle(keras.layers.Layer):
    def __init__(self, probability: float, alpha: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.probability, self.alpha = probability, alpha
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training:
            return x
        ops = keras.ops
        # the statistics are not trained through (as in the paper)
        mean = ops.stop_gradient(ops.mean(x, axis=(1, 2), keepdims=True))
        std = ops.stop_gradient(ops.sqrt(ops.var(x, axis=(1, 2), keepdims=True) + EPSILON))
        batch = ops.shape(x)[0]
        shape = (batch, 1, 1, 1)
        weight = keras.random.beta(shape, self.alpha, self.alpha, seed=self.seed_generator)
        other = keras.random.shuffle(ops.arange(batch), seed=self.seed_generator)
        mixed_mean = weight * mean + (1 - weight) * ops.take(mean, other, axis=0)
        mixed_std = weight * std + (1 - weight) * ops.take(std, other, axis=0)
        apply = keras.random.uniform(shape, seed=self.seed_generator) < self.probability
        return ops.where(apply, (x - mean) / std * mixed_std + mixed_mean, x)
