"""scripts/as_avx2.py: a command's processes see an AVX2-only CPU, through cpuid and
/proc/cpuinfo alike, and fail as they would without it."""

import ctypes
import mmap
import os
import platform
import subprocess
import sys

import pytest

from nst_tf.features import cpu_flags

SCRIPTS = os.path.join(os.path.dirname(__file__), "..", "scripts")
AS_AVX2 = os.path.join(SCRIPTS, "as_avx2.py")
sys.path.insert(0, SCRIPTS)

import as_avx2  # noqa: E402  (scripts/as_avx2.py)

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux"
    or platform.machine() != "x86_64"
    or not {"avx512f", "cpuid_fault"} <= cpu_flags()
    or not as_avx2.c_compiler(),
    reason="needs x86-64 Linux on a CPU with AVX-512 whose cpuid the kernel can trap, and a "
    "C compiler",
)

# cpuid leaf 7, sub-leaf 0, as executed by the CPU: ebx, whose bit 5 is AVX2 and 16 AVX-512F
# (push rbx; mov eax, 7; xor ecx, ecx; cpuid; mov eax, ebx; pop rbx; ret)
LEAF7_EBX = bytes.fromhex("53 b8 07 00 00 00 31 c9 0f a2 89 d8 5b c3")
ROOT = os.path.join(os.path.dirname(__file__), "..")
PROBE = """
from nst_tf.features import cpu_flags
from tests.test_as_avx2 import leaf7_ebx
ebx = leaf7_ebx()
print(ebx >> 5 & 1, ebx >> 16 & 1, *sorted(f for f in cpu_flags() if f.startswith(("avx", "amx"))))
"""


def run(*command: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, AS_AVX2, *command], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def leaf7_ebx() -> int:
    """What this process's CPU answers to cpuid leaf 7, sub-leaf 0, in ebx."""
    code = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code.write(LEAF7_EBX)
    address = ctypes.addressof(ctypes.c_char.from_buffer(code))
    return ctypes.CFUNCTYPE(ctypes.c_uint32)(address)()


def test_cpuid_and_cpuinfo_show_avx2_and_nothing_wider():
    ebx = leaf7_ebx()
    assert (ebx >> 5 & 1, ebx >> 16 & 1) == (1, 1)  # here, without it: AVX2 and AVX-512F
    result = run(sys.executable, "-c", PROBE, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "0", "avx", "avx2"]


def test_a_real_fault_reaches_the_program_s_handler_and_kills_it():
    crash = "import ctypes; ctypes.string_at(0)"
    result = run(sys.executable, "-X", "faulthandler", "-c", crash)
    assert result.returncode == -11
    assert "Fatal Python error: Segmentation fault" in result.stderr


def test_without_a_command_or_with_a_missing_one_it_says_so():
    assert run().returncode == 2
    result = run("no-such-program-here")
    assert result.returncode == 127
    assert result.stderr.strip() == (
        "as_avx2: cannot run no-such-program-here: No such file or directory"
    )


def test_the_library_goes_first_in_ld_preload_and_marks_the_process(monkeypatch):
    env = as_avx2.environment({"LD_PRELOAD": "libother.so"})
    assert env["LD_PRELOAD"] == f"{as_avx2.library()} libother.so"
    monkeypatch.setenv("LD_PRELOAD", env["LD_PRELOAD"])
    assert as_avx2.active()
    monkeypatch.setenv("LD_PRELOAD", "libother.so")
    assert not as_avx2.active()
