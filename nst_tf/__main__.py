"""`python -m nst_tf`: the nst-tf command."""

from nst_tf.cli import run

run()
