/*
 * paws-proxy-filter PROGRAM [ARGS...]: the proxy's kernel filter (ProxySandbox.ts). Runs as the
 * proxy's own unprivileged uid, right after setpriv, then execs PROGRAM in place. Compiled by the
 * node with gcc (ProxyKernelFilter.ts); proxy-kernel-filter.py does the same where it cannot be,
 * at ~65 ms more CPU per proxy (a Python interpreter's start).
 *
 * - Landlock (any ABI): every right that changes the file system is handled and none granted, so
 *   the proxy can create, write, truncate, rename or delete nothing anywhere; reads are unaffected.
 * - seccomp (x86_64): the syscalls an exploited proxy would use to reach the kernel or other
 *   processes fail with EPERM (ptrace, process_vm_*, mount family, namespaces, keyrings, bpf,
 *   perf, userfaultfd, modules, kexec, io_uring); clone with a namespace flag too, and clone3 gets
 *   ENOSYS so glibc falls back to clone, whose flags a filter can see. Other ABIs (x32): EPERM.
 * Kernels without Landlock, or other architectures, get what they support; failure to install an
 * available filter is fatal (exit 126), never silently skipped.
 */
#include <errno.h>
#include <linux/filter.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "paws proxy filter: %s: %s\n", what, strerror(errno));
  return 126;
}

/* landlock_create_ruleset / landlock_restrict_self: the same numbers on every architecture. */
enum { LANDLOCK_CREATE = 444, LANDLOCK_RESTRICT = 446, LANDLOCK_VERSION = 1 };

static int restrict_writes(void) {
  long abi = syscall(LANDLOCK_CREATE, NULL, 0, LANDLOCK_VERSION);
  if (abi < 1) return 0; /* no Landlock in this kernel */
  uint64_t rights = 1u << 1; /* WRITE_FILE */
  for (int bit = 4; bit <= 12; bit++) rights |= 1u << bit; /* REMOVE_*, MAKE_* */
  if (abi >= 2) rights |= 1u << 13; /* REFER */
  if (abi >= 3) rights |= 1u << 14; /* TRUNCATE */
  long fd = syscall(LANDLOCK_CREATE, &rights, sizeof rights, 0);
  if (fd < 0) return fail("landlock_create_ruleset");
  if (syscall(LANDLOCK_RESTRICT, fd, 0) != 0) return fail("landlock_restrict_self");
  close((int)fd);
  return 0;
}

#if defined(__x86_64__)
enum { ALLOW = 0x7FFF0000u, ERRNO = 0x00050000u, KILL = 0x80000000u };
enum { LD = BPF_LD | BPF_W | BPF_ABS, JEQ = BPF_JMP | BPF_JEQ | BPF_K, JGE = BPF_JMP | BPF_JGE | BPF_K };
enum { JSET = BPF_JMP | BPF_JSET | BPF_K, RET = BPF_RET | BPF_K };

static const struct { unsigned nr, err; } denied[] = {
    {101, EPERM}, {310, EPERM}, {311, EPERM}, {165, EPERM}, {166, EPERM}, {155, EPERM},   {161, EPERM},
    {272, EPERM}, {308, EPERM}, {248, EPERM}, {249, EPERM}, {250, EPERM}, {321, EPERM},   {298, EPERM},
    {323, EPERM}, {246, EPERM}, {320, EPERM}, {175, EPERM}, {313, EPERM}, {176, EPERM},   {169, EPERM},
    {167, EPERM}, {168, EPERM}, {163, EPERM}, {303, EPERM}, {304, EPERM}, {425, ENOSYS}, {426, ENOSYS},
    {427, ENOSYS}, {435, ENOSYS},
};

static int refuse_syscalls(void) {
  enum { N = sizeof denied / sizeof denied[0] };
  struct sock_filter prog[6 + 2 * N + 5];
  int i = 0;
  prog[i++] = (struct sock_filter)BPF_STMT(LD, 4); /* seccomp_data.arch */
  prog[i++] = (struct sock_filter)BPF_JUMP(JEQ, 0xC000003E, 1, 0); /* AUDIT_ARCH_X86_64 */
  prog[i++] = (struct sock_filter)BPF_STMT(RET, KILL);
  prog[i++] = (struct sock_filter)BPF_STMT(LD, 0); /* seccomp_data.nr */
  prog[i++] = (struct sock_filter)BPF_JUMP(JGE, 0x40000000, 0, 1); /* the x32 ABI */
  prog[i++] = (struct sock_filter)BPF_STMT(RET, ERRNO | EPERM);
  for (int d = 0; d < N; d++) {
    prog[i++] = (struct sock_filter)BPF_JUMP(JEQ, denied[d].nr, 0, 1);
    prog[i++] = (struct sock_filter)BPF_STMT(RET, ERRNO | denied[d].err);
  }
  /* clone (56) with any namespace flag: no new user (or other) namespaces. */
  prog[i++] = (struct sock_filter)BPF_JUMP(JEQ, 56, 0, 3);
  prog[i++] = (struct sock_filter)BPF_STMT(LD, 16); /* args[0], low 32 bits */
  prog[i++] = (struct sock_filter)BPF_JUMP(JSET, 0x7E020080, 0, 1);
  prog[i++] = (struct sock_filter)BPF_STMT(RET, ERRNO | EPERM);
  prog[i++] = (struct sock_filter)BPF_STMT(RET, ALLOW);
  struct sock_fprog fprog = {.len = (unsigned short)i, .filter = prog};
  if (prctl(PR_SET_SECCOMP, 2 /* SECCOMP_MODE_FILTER */, &fprog, 0, 0) != 0) return fail("seccomp");
  return 0;
}
#else
static int refuse_syscalls(void) { return 0; }
#endif

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: paws-proxy-filter PROGRAM [ARGS...]\n");
    return 2;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("no_new_privs");
  int failed = restrict_writes();
  if (failed == 0) failed = refuse_syscalls();
  if (failed != 0) return failed;
  execv(argv[1], argv + 1);
  return fail(argv[1]);
}
