/*
 * paws-restore: runs in a guest right after a snapshot restore, before any workload.
 *   paws-restore <epoch-ns> <seed-hex> [<ip> <prefix-len> <gateway> <dns>]
 * 1. clock_settime(CLOCK_REALTIME) from the host (busybox `date -s` has 1 s resolution).
 * 2. RNDADDENTROPY with the host's fresh bytes (mixed in and credited), then RNDRESEEDCRNG so the
 *    base CRNG is rekeyed now and every per-CPU CRNG on its next use. Without this, clones of one
 *    snapshot continue the same CRNG state: the guest kernel (6.1 cloud) has no VMGENID, and busybox
 *    cannot issue ioctls. No libc: a few raw syscalls keep it static and tiny.
 * 3. eth0 moved to the clone's slot (address, netmask, default route) and /etc/resolv.conf, with
 *    the classic ioctls: one process instead of four `ip` runs, each costly on a freshly resumed
 *    TCG guest.
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
struct sin { unsigned short family; unsigned short port; unsigned int addr; unsigned char zero[8]; };
struct ifreq { char name[16]; struct sin addr; unsigned char pad[8]; };
struct rtentry {
  unsigned long pad1;
  struct sin dst, gateway, genmask;
  unsigned short flags;
  short pad2;
  unsigned long pad3;
  void *pad4;
  short metric;
  char *dev;
  unsigned long mtu, window;
  unsigned short irtt;
};

static unsigned int parse_ip(const char *p) {
  unsigned int out = 0, part = 0;
  int parts = 0;
  for (;; p++) {
    if (*p >= '0' && *p <= '9') {
      part = part * 10 + (unsigned int)(*p - '0');
      if (part > 255) fail("bad address\n", 2);
    } else if (*p == '.' || *p == 0) {
      out |= part << (8 * parts++); /* network byte order on little-endian */
      part = 0;
      if (*p == 0) break;
    } else fail("bad address\n", 2);
  }
  if (parts != 4) fail("bad address\n", 2);
  return out;
}

static void set_network(char *ip, char *prefix, char *gw, char *dns) {
  long s = sys(41, 2 /* AF_INET */, 2 /* SOCK_DGRAM */, 0);
  if (s < 0) fail("socket failed\n", 7);
  struct ifreq ifr = { "eth0", { 2, 0, parse_ip(ip), { 0 } }, { 0 } };
  if (sys(16, s, 0x8916 /* SIOCSIFADDR */, (long)&ifr) != 0) fail("SIOCSIFADDR failed\n", 7);
  int len = 0;
  for (char *p = prefix; *p; p++) len = len * 10 + (*p - '0');
  if (len < 1 || len > 32) fail("bad prefix\n", 2);
  unsigned int host = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
  ifr.addr.addr = ((host >> 24) & 255) | ((host >> 8) & 0xff00) | ((host << 8) & 0xff0000) | (host << 24);
  if (sys(16, s, 0x891c /* SIOCSIFNETMASK */, (long)&ifr) != 0) fail("SIOCSIFNETMASK failed\n", 7);
  struct rtentry rt;
  for (unsigned long i = 0; i < sizeof rt; i++) ((volatile char *)&rt)[i] = 0;
  rt.dst.family = rt.gateway.family = rt.genmask.family = 2;
  rt.dev = "eth0";
  rt.flags = 1; /* RTF_UP: removes any default route left from the snapshot's slot */
  while (sys(16, s, 0x890c /* SIOCDELRT */, (long)&rt) == 0) {}
  rt.gateway.addr = parse_ip(gw);
  rt.flags = 1 | 2; /* RTF_UP | RTF_GATEWAY */
  if (sys(16, s, 0x890b /* SIOCADDRT */, (long)&rt) != 0) fail("SIOCADDRT failed\n", 7);
  sys(3, s, 0, 0);
  long fd = sys(2, (long)"/etc/resolv.conf", 01 | 0100 | 01000 /* O_WRONLY|O_CREAT|O_TRUNC */, 0644);
  if (fd < 0) fail("open /etc/resolv.conf failed\n", 7);
  char line[64] = "nameserver ";
  int n = 11;
  for (char *p = dns; *p && n < 62; p++) line[n++] = *p;
  line[n++] = '\n';
  if (sys(1, fd, (long)line, n) != n) fail("write /etc/resolv.conf failed\n", 7);
  sys(3, fd, 0, 0);
}

__attribute__((used)) void run(long argc, char **argv) {
  if (argc != 3 && argc != 7) fail("usage: paws-restore <epoch-ns> <seed-hex> [<ip> <prefix> <gw> <dns>]\n", 2);
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
  if (argc == 7) set_network(argv[3], argv[4], argv[5], argv[6]);
  sys(60, 0, 0, 0);
}

__asm__(".global _start\n_start:\n  mov (%rsp), %rdi\n  lea 8(%rsp), %rsi\n  and $-16, %rsp\n  call run\n  hlt\n");
