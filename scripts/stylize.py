#!/usr/bin/env python3
"""The nst-tf command, runnable from a checkout: python scripts/stylize.py --content=... --style=..."""

from nst_tf.cli import run

if __name__ == "__main__":
    run()
