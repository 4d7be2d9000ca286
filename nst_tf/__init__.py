"""nst_tf: optimisation-based neural style transfer (Gatys et al.) in TensorFlow/Keras.

    import nst_tf
    image = nst_tf.stylize("photo.jpg", "painting.jpg", nst_tf.Config(size=512, steps=300))

`prepare` reads and checks the inputs once; `StyleTransfer` runs them coarse to fine, and
its `stage` exposes the image variable, the loss terms and the step for embedding the loop
in a TensorFlow program. TensorFlow is imported on first use of these names, so
`import nst_tf` alone stays cheap.
"""

from nst_tf.config import Config, ConfigError

__all__ = ["Config", "ConfigError", "StyleTransfer", "prepare", "stylize"]
__version__ = "0.1.0"


def __getattr__(name):
    if name in ("StyleTransfer", "prepare", "stylize"):
        from nst_tf import transfer

        return getattr(transfer, name)
    raise AttributeError(f"module 'nst_tf' has no attribute {name!r}")
