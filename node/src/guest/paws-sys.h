/* Raw x86-64 Linux syscalls for the guest helpers: no libc, so the binary is static and tiny. */
#ifndef PAWS_SYS_H
#define PAWS_SYS_H
typedef unsigned long u64;
static inline long sys(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
static inline long sys4(long n, long a, long b, long c, long d) {
  long r;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}
enum {
  SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3, SYS_poll = 7, SYS_lseek = 8,
  SYS_rt_sigaction = 13, SYS_rt_sigprocmask = 14, SYS_ioctl = 16, SYS_dup2 = 33, SYS_nanosleep = 35,
  SYS_socket = 41, SYS_fork = 57, SYS_execve = 59, SYS_exit = 60, SYS_wait4 = 61, SYS_kill = 62,
  SYS_chdir = 80, SYS_mkdir = 83, SYS_unlink = 87, SYS_fchmod = 91, SYS_setsid = 112, SYS_clock_settime = 227, SYS_signalfd4 = 289,
  SYS_pipe2 = 293,
};
static inline long str_len(const char *s) {
  long n = 0;
  while (s[n]) n++;
  return n;
}
/* Moves the clock, reseeds the CRNG and (when ip is set) moves eth0; 0 or an error message. */
const char *paws_restore(const char *epoch_ns, const char *seed_hex, const char *ip, const char *prefix,
                         const char *gw, const char *dns);
#endif
