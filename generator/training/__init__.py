"""Everything that only training and measuring a model needs: corpus parsing, tf.data windows,
the Keras fit, scoring, the n-gram baseline and the quality report.

The bot composes with the runtime modules of ``generator`` alone and never imports this package,
so its image can leave out what training pulls in (TensorFlow above all).
"""
