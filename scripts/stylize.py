#!/usr/bin/env python3
"""The nst-tf command as a script: python scripts/stylize.py --content=A --style=B --output=C."""

from nst_tf.cli import run

if __name__ == "__main__":
    run()
