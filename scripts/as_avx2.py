#!/usr/bin/env python3
"""Run a command as on a CPU with AVX2 and nothing wider, on an x86-64 Linux machine whose
CPU has AVX-512 or AMX:

    python scripts/as_avx2.py python scripts/benchmark.py --suite=fast

Every library in the command's processes then chooses the kernels it would choose on an
AVX2-only CPU (an AMD EPYC before Zen 4, say): TensorFlow leaves oneDNN off and XLA
compiles for AVX2, onnxruntime takes its AVX2 kernels, and nst_tf's `auto` choices follow.
Environment settings such as ONEDNN_MAX_CPU_ISA hold back only the library that reads them.
The clock, caches and memory stay this machine's: compare programs with each other under
it, not with another machine's times.

How: as_avx2.c, built here with the C compiler ($CC, else cc) on first use and loaded with
LD_PRELOAD, has the kernel trap the cpuid instruction and answers it without the wider
features, and shows /proc/cpuinfo without them.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "as_avx2.c")
PREFIX = "nst_tf-as_avx2-"  # the built library's name: PREFIX, the source's digest, .so


class Unavailable(RuntimeError):
    """This machine cannot show a program an AVX2-only CPU; the message says why."""


def library() -> str:
    """The path of the built as_avx2.c, built if this version of it is not yet."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise Unavailable(f"as_avx2 needs x86-64 Linux, not {platform.system()} on "
                          f"{platform.machine()}")  # fmt: skip
    with open(SOURCE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"{PREFIX}{digest}.so")
    if os.path.exists(path):
        return path
    compiler = c_compiler()
    if not compiler:
        raise Unavailable("as_avx2 needs a C compiler (set CC, or install gcc)")
    partial = f"{path}.{os.getpid()}"
    built = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", partial, SOURCE, "-ldl"],
        capture_output=True,
        text=True,
    )
    if built.returncode:
        raise Unavailable(f"as_avx2.c did not compile with {compiler}: {built.stderr.strip()}")
    os.replace(partial, path)
    return path


def c_compiler() -> str | None:
    """The C compiler to build the library with: $CC, else cc or gcc on the PATH."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (by default this process's) with as_avx2 preloaded in every process."""
    env = dict(os.environ if env is None else env)
    env["LD_PRELOAD"] = " ".join(filter(None, [library(), env.get("LD_PRELOAD", "")]))
    return env


def active() -> bool:
    """Whether this process runs under as_avx2."""
    return PREFIX in os.environ.get("LD_PRELOAD", "")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv else 2
    try:
        env = environment()
    except Unavailable as e:
        print(e, file=sys.stderr)
        return 2
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        print(f"as_avx2: cannot run {argv[0]}: {e.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
