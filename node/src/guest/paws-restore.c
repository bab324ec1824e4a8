/*
 * The agent's `restore` command, run in a guest right after a snapshot restore, before any workload:
 * 1. clock_settime(CLOCK_REALTIME) from the host (busybox `date -s` has 1 s resolution).
 * 2. RNDADDENTROPY with the host's fresh bytes (mixed in and credited), then RNDRESEEDCRNG so the
 *    base CRNG is rekeyed now and every per-CPU CRNG on its next use. Without this, clones of one
 *    snapshot continue the same CRNG state: the guest kernel (6.1 cloud) has no VMGENID, and busybox
 *    cannot issue ioctls.
 * 3. eth0 moved to the clone's slot (address, netmask, default route) and /etc/resolv.conf, with
 *    the classic ioctls: no `ip` processes, each costly on a freshly resumed TCG guest.
 * In the agent's own process (paws-agent.c): no fork at all.
 */
#include "paws-sys.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
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

/* Network byte order on little-endian; 0 for a malformed address (never a valid slot address). */
static unsigned int parse_ip(const char *p) {
  unsigned int out = 0, part = 0;
  int parts = 0;
  for (;; p++) {
    if (*p >= '0' && *p <= '9') {
      part = part * 10 + (unsigned int)(*p - '0');
      if (part > 255) return 0;
    } else if (*p == '.' || *p == 0) {
      if (parts == 4) return 0;
      out |= part << (8 * parts++);
      part = 0;
      if (*p == 0) break;
    } else return 0;
  }
  return parts == 4 ? out : 0;
}

static const char *set_network(const char *ip, const char *prefix, const char *gw, const char *dns) {
  unsigned int addr = parse_ip(ip), gateway = parse_ip(gw);
  if (addr == 0 || gateway == 0) return "bad address";
  int len = 0;
  for (const char *p = prefix; *p; p++) {
    if (*p < '0' || *p > '9') return "bad prefix";
    len = len * 10 + (*p - '0');
  }
  if (len < 1 || len > 32) return "bad prefix";
  long s = sys(SYS_socket, 2 /* AF_INET */, 2 | 02000000 /* SOCK_DGRAM|SOCK_CLOEXEC */, 0);
  if (s < 0) return "socket failed";
  const char *err = 0;
  struct ifreq ifr = { "eth0", { 2, 0, addr, { 0 } }, { 0 } };
  unsigned int host = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
  struct rtentry rt;
  if (sys(SYS_ioctl, s, 0x8916 /* SIOCSIFADDR */, (long)&ifr) != 0) {
    err = "SIOCSIFADDR failed";
    goto out;
  }
  ifr.addr.addr = ((host >> 24) & 255) | ((host >> 8) & 0xff00) | ((host << 8) & 0xff0000) | (host << 24);
  if (sys(SYS_ioctl, s, 0x891c /* SIOCSIFNETMASK */, (long)&ifr) != 0) {
    err = "SIOCSIFNETMASK failed";
    goto out;
  }
  for (unsigned long i = 0; i < sizeof rt; i++) ((volatile char *)&rt)[i] = 0;
  rt.dst.family = rt.gateway.family = rt.genmask.family = 2;
  rt.dev = "eth0";
  rt.flags = 1; /* RTF_UP: removes any default route left from the snapshot's slot */
  while (sys(SYS_ioctl, s, 0x890c /* SIOCDELRT */, (long)&rt) == 0) {}
  rt.gateway.addr = gateway;
  rt.flags = 1 | 2; /* RTF_UP | RTF_GATEWAY */
  if (sys(SYS_ioctl, s, 0x890b /* SIOCADDRT */, (long)&rt) != 0) {
    err = "SIOCADDRT failed";
    goto out;
  }
  long fd = sys(SYS_open, (long)"/etc/resolv.conf", 01 | 0100 | 01000 | 02000000 /* WRONLY|CREAT|TRUNC|CLOEXEC */, 0644);
  if (fd < 0) {
    err = "open /etc/resolv.conf failed";
    goto out;
  }
  char line[64] = "nameserver ";
  int n = 11;
  for (const char *p = dns; *p && n < 62; p++) line[n++] = *p;
  line[n++] = '\n';
  if (sys(SYS_write, fd, (long)line, n) != n) err = "write /etc/resolv.conf failed";
  sys(SYS_close, fd, 0, 0);
out:
  sys(SYS_close, s, 0, 0);
  return err;
}

const char *paws_restore(const char *epoch_ns, const char *seed_hex, const char *ip, const char *prefix,
                         const char *gw, const char *dns) {
  u64 ns = 0;
  if (!*epoch_ns) return "bad epoch-ns";
  for (const char *p = epoch_ns; *p; p++) {
    if (*p < '0' || *p > '9') return "bad epoch-ns";
    ns = ns * 10 + (u64)(*p - '0');
  }
  struct { long sec; long nsec; } ts = { (long)(ns / 1000000000UL), (long)(ns % 1000000000UL) };
  if (sys(SYS_clock_settime, 0, (long)&ts, 0) != 0) return "clock_settime failed";
  struct pool pool;
  int n = 0;
  for (const char *p = seed_hex; p[0] && p[1] && n < 256; p += 2) {
    int hi = hexval(p[0]), lo = hexval(p[1]);
    if (hi < 0 || lo < 0) return "bad seed hex";
    pool.buf[n++] = (unsigned char)(hi * 16 + lo);
  }
  if (n < 32) return "seed shorter than 32 bytes";
  pool.entropy_count = n * 8;
  pool.buf_size = n;
  long fd = sys(SYS_open, (long)"/dev/urandom", 2 | 02000000 /* O_RDWR|O_CLOEXEC */, 0);
  if (fd < 0) return "open /dev/urandom failed";
  const char *err = 0;
  if (sys(SYS_ioctl, fd, 0x40085203 /* RNDADDENTROPY */, (long)&pool) != 0) err = "RNDADDENTROPY failed";
  else if (sys(SYS_ioctl, fd, 0x5207 /* RNDRESEEDCRNG */, 0) != 0) err = "RNDRESEEDCRNG failed";
  sys(SYS_close, fd, 0, 0);
  for (int i = 0; i < n; i++) ((volatile unsigned char *)pool.buf)[i] = 0;
  if (err) return err;
  return ip ? set_network(ip, prefix, gw, dns) : 0;
}
