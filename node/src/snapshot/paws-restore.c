/*
 * paws-restore: runs in a guest right after a snapshot restore, before any workload.
 *   paws-restore <epoch-ns> <seed-hex>
 * 1. clock_settime(CLOCK_REALTIME) from the host (busybox `date -s` has 1 s resolution).
 * 2. RNDADDENTROPY with the host's fresh bytes (mixed in and credited), then RNDRESEEDCRNG so the
 *    base CRNG is rekeyed now and every per-CPU CRNG on its next use. Without this, clones of one
 *    snapshot continue the same CRNG state: the guest kernel (6.1 cloud) has no VMGENID, and busybox
 *    cannot issue ioctls. No libc: a few raw syscalls keep it static and tiny.
 */
typedef unsigned long u64;
static long sys(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
static void fail(const char *m, long code) {
  long n = 0;
  while (m[n]) n++;
  sys(1, 2, (long)m, n);
  sys(60, (int)code, 0, 0);
}
struct pool { int entropy_count; int buf_size; unsigned char buf[256]; };

__attribute__((used)) void run(long argc, char **argv) {
  if (argc != 3) fail("usage: paws-restore <epoch-ns> <seed-hex>\n", 2);
  u64 ns = 0;
  for (char *p = argv[1]; *p; p++) {
    if (*p < '0' || *p > '9') fail("bad epoch-ns\n", 2);
    ns = ns * 10 + (u64)(*p - '0');
  }
  struct { long sec; long nsec; } ts = { (long)(ns / 1000000000UL), (long)(ns % 1000000000UL) };
  if (sys(227, 0, (long)&ts, 0) != 0) fail("clock_settime failed\n", 3);
  struct pool pool;
  int n = 0;
  for (char *p = argv[2]; p[0] && p[1] && n < 256; p += 2) {
    int hi = hexval(p[0]), lo = hexval(p[1]);
    if (hi < 0 || lo < 0) fail("bad seed hex\n", 2);
    pool.buf[n++] = (unsigned char)(hi * 16 + lo);
  }
  if (n < 32) fail("seed shorter than 32 bytes\n", 2);
  pool.entropy_count = n * 8;
  pool.buf_size = n;
  long fd = sys(2, (long)"/dev/urandom", 2 /* O_RDWR */, 0);
  if (fd < 0) fail("open /dev/urandom failed\n", 4);
  if (sys(16, fd, 0x40085203 /* RNDADDENTROPY */, (long)&pool) != 0) fail("RNDADDENTROPY failed\n", 5);
  if (sys(16, fd, 0x5207 /* RNDRESEEDCRNG */, 0) != 0) fail("RNDRESEEDCRNG failed\n", 6);
  for (int i = 0; i < n; i++) ((volatile unsigned char *)pool.buf)[i] = 0;
  sys(60, 0, 0, 0);
}

__asm__(".global _start\n_start:\n  mov (%rsp), %rdi\n  lea 8(%rsp), %rsi\n  and $-16, %rsp\n  call run\n  hlt\n");
