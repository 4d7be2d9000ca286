// Loaded with LD_PRELOAD by scripts/as_avx2.py: the program sees an AVX2-only x86-64 CPU.
//
// The kernel traps every cpuid instruction (ARCH_SET_CPUID, "cpuid faulting"; the setting
// holds for the threads and children a thread makes, and this library sets it again after
// each exec). The SIGSEGV handler runs the real cpuid and clears the bits of AVX-512, AMX
// and the VNNI extensions before the program reads them, and /proc/cpuinfo is read with
// the same features left out of its flags. Libraries that choose their kernels at run time
// (oneDNN, onnxruntime's MLAS, XLA's LLVM, libjpeg-turbo's SIMD) then choose
// their AVX2 ones.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

typedef int sigaction_fn(int, const struct sigaction *, struct sigaction *);
static sigaction_fn *real_sigaction;
static struct sigaction program;  // the program's own SIGSEGV handler, the default at first

static int trap_cpuid(int on) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void mask(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c,
                 unsigned *d) {
  if (leaf == 7 && sub == 0) {
    // AVX-512 F, DQ, IFMA, PF, ER, CD, BW, VL; VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ;
    // 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8
    *b &= ~(1u << 16 | 1u << 17 | 1u << 21 | 1u << 26 | 1u << 27 | 1u << 28 | 1u << 30 |
            1u << 31);
    *c &= ~(1u << 1 | 1u << 6 | 1u << 11 | 1u << 12 | 1u << 14);
    *d &= ~(1u << 2 | 1u << 3 | 1u << 8 | 1u << 22 | 1u << 23 | 1u << 24 | 1u << 25);
  } else if (leaf == 7 && sub == 1) {
    // AVX-VNNI, AVX512-BF16, AMX-FP16, AVX-IFMA; AVX-VNNI-INT8, AVX-NE-CONVERT,
    // AMX-COMPLEX, AVX-VNNI-INT16, AVX10
    *a &= ~(1u << 4 | 1u << 5 | 1u << 21 | 1u << 23);
    *d &= ~(1u << 4 | 1u << 5 | 1u << 8 | 1u << 10 | 1u << 19);
  } else if (leaf == 0xd && sub == 0) {
    *a &= ~(1u << 5 | 1u << 6 | 1u << 7 | 1u << 17 | 1u << 18);  // their register state
  }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
  greg_t *r = ((ucontext_t *)context)->uc_mcontext.gregs;
  const uint8_t *ip = (const uint8_t *)r[REG_RIP];
  if (ip[0] != 0x0f || ip[1] != 0xa2) {  // a real fault: the program's handler, or the default
    struct sigaction handler = program;
    if (handler.sa_flags & SA_RESETHAND) program = (struct sigaction){.sa_handler = SIG_DFL};
    if (handler.sa_flags & SA_SIGINFO) {
      handler.sa_sigaction(sig, info, context);
    } else if (handler.sa_handler != SIG_DFL && handler.sa_handler != SIG_IGN) {
      handler.sa_handler(sig);
    } else {
      struct sigaction dfl = {.sa_handler = SIG_DFL};
      real_sigaction(SIGSEGV, &dfl, 0);
      raise(SIGSEGV);
    }
    return;
  }
  unsigned leaf = r[REG_RAX], sub = r[REG_RCX], a, b, c, d;
  trap_cpuid(0);
  __cpuid_count(leaf, sub, a, b, c, d);
  trap_cpuid(1);
  mask(leaf, sub, &a, &b, &c, &d);
  r[REG_RAX] = a, r[REG_RBX] = b, r[REG_RCX] = c, r[REG_RDX] = d;
  r[REG_RIP] += 2;  // past the cpuid instruction
}

// The program installs its SIGSEGV handler here; this library's stays, and calls it.
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (sig != SIGSEGV) return real_sigaction(sig, act, old);
  if (old) *old = program;
  if (act) program = *act;
  return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
  if (sig != SIGSEGV) {
    static sighandler_t (*real)(int, sighandler_t);
    if (!real) real = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
    return real(sig, handler);
  }
  sighandler_t old = program.sa_handler;
  program = (struct sigaction){.sa_handler = handler, .sa_flags = SA_RESTART};
  return old;
}

// /proc/cpuinfo, with the masked features' words taken out of its "flags" lines.
static const char *const HIDDEN[] = {"avx512", "amx", "avx_vnni", "avx_ifma", "avx_ne_convert",
                                     "avx10"};

static int hidden(const char *word, size_t n) {
  for (size_t i = 0; i < sizeof HIDDEN / sizeof *HIDDEN; i++) {
    size_t k = strlen(HIDDEN[i]);
    if (n >= k && strncmp(word, HIDDEN[i], k) == 0) return 1;
  }
  return 0;
}

static int masked_cpuinfo(void) {
  int in = syscall(SYS_openat, AT_FDCWD, "/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
  if (in < 0) return -1;
  size_t size = 0, cap = 1 << 16;
  char *text = malloc(cap);
  for (ssize_t n; text && (n = read(in, text + size, cap - size)) > 0;) {
    size += n;
    if (size == cap) text = realloc(text, cap *= 2);
  }
  close(in);
  int out = memfd_create("cpuinfo", MFD_CLOEXEC);
  if (!text || out < 0) return free(text), -1;
  FILE *f = fdopen(dup(out), "w");
  for (char *line = text, *end; line < text + size; line = end + 1) {
    end = memchr(line, '\n', text + size - line);
    if (!end) end = text + size;
    char *words = strncmp(line, "flags", 5) == 0 ? memchr(line, ':', end - line) : NULL;
    if (!words) {
      fprintf(f, "%.*s\n", (int)(end - line), line);
      continue;
    }
    fprintf(f, "%.*s:", (int)(words - line), line);
    for (char *w = words + 1, *e; w < end; w = e) {
      while (w < end && *w == ' ') w++;
      for (e = w; e < end && *e != ' '; e++) {
      }
      if (e > w && !hidden(w, e - w)) fprintf(f, " %.*s", (int)(e - w), w);
    }
    fputc('\n', f);
  }
  fclose(f);
  free(text);
  lseek(out, 0, SEEK_SET);
  return out;
}

static int is_cpuinfo(const char *path) { return path && strcmp(path, "/proc/cpuinfo") == 0; }

#define OPEN(name, args, call)                                                 \
  int name args {                                                              \
    mode_t mode = 0;                                                           \
    if ((flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE) {           \
      va_list ap;                                                              \
      va_start(ap, flags);                                                     \
      mode = va_arg(ap, mode_t);                                               \
      va_end(ap);                                                              \
    }                                                                          \
    if (is_cpuinfo(path)) return masked_cpuinfo();                             \
    static int(*real) args;                                                    \
    if (!real) real = dlsym(RTLD_NEXT, #name);                                 \
    return call;                                                               \
  }
OPEN(open, (const char *path, int flags, ...), real(path, flags, mode))
OPEN(open64, (const char *path, int flags, ...), real(path, flags, mode))
OPEN(openat, (int dir, const char *path, int flags, ...), real(dir, path, flags, mode))
OPEN(openat64, (int dir, const char *path, int flags, ...), real(dir, path, flags, mode))

#define FOPEN(name)                                                            \
  FILE *name(const char *path, const char *how) {                              \
    if (is_cpuinfo(path)) {                                                    \
      int fd = masked_cpuinfo();                                               \
      return fd < 0 ? NULL : fdopen(fd, how);                                  \
    }                                                                          \
    static FILE *(*real)(const char *, const char *);                          \
    if (!real) real = dlsym(RTLD_NEXT, #name);                                 \
    return real(path, how);                                                    \
  }
FOPEN(fopen)
FOPEN(fopen64)

__attribute__((constructor)) static void start(void) {
  real_sigaction = (sigaction_fn *)dlsym(RTLD_NEXT, "sigaction");
  // on the program's alternate stack, if it sets one up (for a fault of stack overflow)
  struct sigaction act = {.sa_sigaction = on_segv,
                          .sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK};
  real_sigaction(SIGSEGV, &act, 0);
  if (trap_cpuid(1) != 0) {
    static const char why[] =
        "as_avx2: this CPU or kernel cannot trap cpuid (arch_prctl ARCH_SET_CPUID), so the "
        "program cannot be shown an AVX2-only CPU\n";
    write(2, why, sizeof why - 1);
    _exit(2);
  }
}
