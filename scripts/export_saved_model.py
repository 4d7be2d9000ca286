#!/usr/bin/env python3
"""The nst-tf-export command as a script: python scripts/export_saved_model.py --version=2."""

from nst_tf.export_cli import run

if __name__ == "__main__":
    run()
