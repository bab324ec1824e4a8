/*
 * paws-agent: the guest side of the node's command channel, on the virtio-serial port given as
 * argv[1]. Requests are lines; answers are lines, except exec's framed stream:
 *   ping <nonce>                         -> pong <nonce>
 *   restore <epoch-ns> <seed-hex> [<ip>/<prefix> <gw> <dns>] -> ok | fail <message>
 *   exec <cmd-len> <stdin-len>\n<cmd><stdin>
 *        -> (o <n>\n<n bytes of stdout> | e <n>\n<n bytes of stderr>)* then x <code> | x s<signal>
 *           (or fail <message> before any frame); a `kill` line meanwhile kills its process group
 *   write <path> <octal-mode> <w|a> <len>\n<bytes>  -> ok | fail <message>   (parents created; the
 *                                        mode is set on w, and used on a only if the file is new)
 *   mkdir <path>                         -> ok | fail <message>   (like mkdir -p)
 *   pty / pin / pwin / pclose            interactive shells, never answered: see paws-pty.c
 * write and mkdir need no process at all: the node prepares a freshly resumed guest with them.
 * exec runs `/bin/sh -c <cmd>` like dropbear runs an SSH exec for root (same environment, cwd
 * /root, default signals, own session) so a workload cannot tell the channels apart. Output
 * streams while the command runs, byte-exact. A port opens once (EBUSY otherwise) and reads EOF
 * while no host is connected; it stays open then (closing it makes the guest kernel drop whatever a
 * host sent in the moment before, so a request went unanswered), and only an error reopens it.
 * One resident static process: right after a
 * snapshot resumes every new guest process is slow, and `restore` needs none.
 * The agent lives in every snapshot's RAM: a protocol change must bump snapshotFormat
 * (SnapshotManifest.ts) so that snapshots holding an older agent are refused and rebuilt.
 */
#include "paws-sys.h"

#define CMD_MAX 131072 /* MAX_ARG_STRLEN: the largest single execve argument */
static char inbuf[65536];
static long in_start, in_end;
static char cmd[CMD_MAX + 1];
static char chunk[65536];
static int port = -1;

static void pause_ms(long ms) {
  struct { long sec; long nsec; } t = { 0, ms * 1000000 };
  sys(SYS_nanosleep, (long)&t, 0, 0);
}
static int write_all(int fd, const char *p, long n) {
  while (n > 0) {
    long w = sys(SYS_write, fd, (long)p, n);
    if (w == -4 /* EINTR */) continue;
    if (w <= 0) return -1;
    p += w;
    n -= w;
  }
  return 0;
}
static int say(const char *s) { return write_all(port, s, str_len(s)); }
static char *num(char *p, unsigned long v) {
  char t[24];
  int n = 0;
  do t[n++] = (char)('0' + v % 10); while (v /= 10);
  while (n) *p++ = t[--n];
  return p;
}
static long last_fill; /* what fill() last returned */
/* More bytes from the port into inbuf; 0 at EOF (no host), <0 on error (or a line too long). */
static long fill(void) {
  if (in_start == in_end) in_start = in_end = 0;
  if (in_end == sizeof inbuf) return last_fill = -1;
  long r;
  do r = sys(SYS_read, port, (long)inbuf + in_end, sizeof inbuf - in_end); while (r == -4);
  if (r > 0) in_end += r;
  return last_fill = r;
}
/* The next complete line from inbuf (NUL-terminated in place), or 0 if none is buffered yet. */
static char *take_line(void) {
  for (long i = in_start; i < in_end; i++) {
    if (inbuf[i] == '\n') {
      char *line = inbuf + in_start;
      inbuf[i] = 0;
      in_start = i + 1;
      return line;
    }
  }
  if (in_start > 0) { /* keep the partial line at the front */
    long n = in_end - in_start;
    for (long i = 0; i < n; i++) inbuf[i] = inbuf[in_start + i];
    in_start = 0;
    in_end = n;
  }
  return 0;
}
/* Copies n bytes of the request to dst (a buffer) or fd; -1 if the host went away, 1 if writing
   to fd failed (the bytes are consumed all the same). */
static int read_exact(char *dst, int fd, long n) {
  int bad = 0;
  while (n > 0) {
    if (in_start == in_end && fill() <= 0) return -1;
    long k = in_end - in_start < n ? in_end - in_start : n;
    if (dst) {
      for (long i = 0; i < k; i++) dst[i] = inbuf[in_start + i];
      dst += k;
    } else if (fd >= 0 && write_all(fd, inbuf + in_start, k) != 0) {
      fd = -1;
      bad = 1;
    }
    in_start += k;
    n -= k;
  }
  return bad;
}
static int eq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}
static long parse_num(char **p) {
  long v = 0;
  if (**p < '0' || **p > '9') return -1;
  while (**p >= '0' && **p <= '9') v = v * 10 + (*(*p)++ - '0');
  while (**p == ' ') (*p)++;
  return v;
}
static char *word(char **p) {
  while (**p == ' ') (*p)++;
  if (!**p) return 0;
  char *w = *p;
  while (**p && **p != ' ') (*p)++;
  if (**p) *(*p)++ = 0;
  return w;
}

struct sigaction_k { long handler; unsigned long flags; long restorer; u64 mask; };
static void set_signal(int sig, long handler) {
  struct sigaction_k sa = { handler, 0, 0, 0 };
  sys4(SYS_rt_sigaction, sig, (long)&sa, 0, 8);
}
struct pollfd { int fd; short events, revents; };

static char *const child_env[] = {
  "USER=root", "LOGNAME=root", "HOME=/root", "SHELL=/bin/sh", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
  "SHLVL=1", /* an SSH exec runs the command in a second shell (GuestShell's setsid wrapper) */
  0,
};

static void child(int in, int out, int err) {
  for (int s = 1; s <= 64; s++)
    if (s != 9 && s != 19) set_signal(s, 0 /* SIG_DFL */);
  u64 none = 0;
  sys4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, (long)&none, 0, 8);
  sys(SYS_setsid, 0, 0, 0);
  sys(SYS_dup2, in, 0, 0);
  sys(SYS_dup2, out, 1, 0);
  sys(SYS_dup2, err, 2, 0);
  if (sys(SYS_chdir, (long)"/root", 0, 0) != 0) sys(SYS_chdir, (long)"/", 0, 0);
  char *argv[] = { "sh", "-c", cmd, 0 };
  sys(SYS_execve, (long)"/bin/sh", (long)argv, (long)child_env);
  write_all(2, "paws-agent: cannot exec /bin/sh\n", 32);
  sys(SYS_exit, 127, 0, 0);
}

/* Sends one frame; on a lost host the output is dropped (the group is killed by the caller). */
static int frame(char tag, const char *data, long n) {
  char h[32], *p = h;
  *p++ = tag;
  *p++ = ' ';
  p = num(p, (unsigned long)n);
  *p++ = '\n';
  return write_all(port, h, p - h) == 0 && write_all(port, data, n) == 0 ? 0 : -1;
}

#include "paws-pty.c"

/* Returns -1 when the host went away (the caller reopens the port). */
static int do_exec(char *args) {
  long clen = parse_num(&args), ilen = parse_num(&args);
  if (clen < 0 || ilen < 0) return say("fail bad exec header\n");
  if (clen > CMD_MAX) {
    if (read_exact(0, -1, clen + ilen) != 0) return -1;
    return say("fail command longer than 131072 bytes\n");
  }
  if (read_exact(cmd, -1, clen) != 0) return -1;
  cmd[clen] = 0;
  /* stdin goes to a file on tmpfs first: no writer to poll, and the request is consumed at once */
  const char *in_path = ilen > 0 ? "/run/paws/exec-stdin" : "/dev/null";
  long in = sys(SYS_open, (long)in_path, (ilen > 0 ? 2 | 0100 | 01000 : 0) | 02000000 /* RDWR|CREAT|TRUNC : RDONLY, CLOEXEC */, 0600);
  if (ilen > 0) {
    int r = read_exact(0, (int)in, ilen);
    if (r != 0 && in >= 0) sys(SYS_close, in, 0, 0);
    if (r < 0) return -1;
    if (r > 0) return say("fail cannot store stdin\n");
    sys(SYS_unlink, (long)in_path, 0, 0);
    if (in >= 0) sys(SYS_lseek, in, 0, 0);
  }
  if (in < 0) return say("fail cannot open stdin\n");
  int out[2], err[2];
  if (sys(SYS_pipe2, (long)out, 02000000, 0) != 0 || sys(SYS_pipe2, (long)err, 02000000, 0) != 0) {
    sys(SYS_close, in, 0, 0);
    return say("fail pipe2\n");
  }
  long pid = sys(SYS_fork, 0, 0, 0);
  if (pid == 0) child((int)in, out[1], err[1]);
  sys(SYS_close, in, 0, 0);
  sys(SYS_close, out[1], 0, 0);
  sys(SYS_close, err[1], 0, 0);
  if (pid < 0) {
    sys(SYS_close, out[0], 0, 0);
    sys(SYS_close, err[0], 0, 0);
    return say("fail fork\n");
  }
  u64 chld = 1UL << (17 - 1); /* SIGCHLD, blocked in the agent and read from a signalfd */
  long sfd = sys4(SYS_signalfd4, -1, (long)&chld, 8, 04000 | 02000000 /* NONBLOCK|CLOEXEC */);
  struct pollfd p[4 + PTY_MAX] = { { port, 1, 0 }, { out[0], 1, 0 }, { err[0], 1, 0 }, { (int)sfd, 1, 0 } };
  int exited = 0, status = 0, host = 0;
  for (;;) {
    if (exited && p[1].fd < 0 && p[2].fd < 0) break;
    /* lines already buffered first (they may have come with the request): kill, or a shell's */
    for (char *l; host == 0 && (l = take_line());) {
      char *rest = l, *c = word(&rest);
      if (c && eq(c, "kill")) sys(SYS_kill, -pid, 9, 0);
      else if (c && pty_line(c, rest) < 0) {
        host = -1;
        p[0].fd = -1;
        sys(SYS_kill, -pid, 9, 0);
      }
    }
    /* once the shell exited, only what is already readable: background children may hold the pipes */
    int np = host == 0 ? pty_polls(p + 4) : 0; /* open shells keep being served during an exec */
    long n = sys(SYS_poll, (long)p, 4 + np, exited ? 0 : (sfd < 0 ? 50 : -1));
    if (n == -4) continue;
    if (host == 0 && pty_serve(p + 4, np) != 0) {
      host = -1;
      sys(SYS_kill, -pid, 9, 0);
    }
    if (n == 0 && exited) break;
    for (int i = 1; i <= 2; i++) {
      if (p[i].fd < 0 || !p[i].revents) continue;
      long r = sys(SYS_read, p[i].fd, (long)chunk, sizeof chunk);
      if (r == -4 || r == -11) continue;
      if (r <= 0) {
        sys(SYS_close, p[i].fd, 0, 0);
        p[i].fd = -1;
      } else if (host == 0 && frame(i == 1 ? 'o' : 'e', chunk, r) != 0) {
        host = -1;
        sys(SYS_kill, -pid, 9, 0);
      }
    }
    if (p[0].fd >= 0 && p[0].revents) {
      if (fill() <= 0) {
        host = -1;
        p[0].fd = -1;
        sys(SYS_kill, -pid, 9, 0);
      }
    }
    if (sfd >= 0 && p[3].revents) {
      char info[128];
      while (sys(SYS_read, sfd, (long)info, sizeof info) > 0) {}
    }
    if (!exited && (sfd < 0 || p[3].revents || n == 0) && sys4(SYS_wait4, pid, (long)&status, 1 /* WNOHANG */, 0) == pid) {
      exited = 1;
    }
  }
  if (sfd >= 0) sys(SYS_close, sfd, 0, 0);
  for (int i = 1; i <= 2; i++)
    if (p[i].fd >= 0) sys(SYS_close, p[i].fd, 0, 0);
  if (host != 0) return -1;
  char x[32] = "x ", *q = x + 2;
  int sig = status & 0x7f;
  if (sig) {
    *q++ = 's';
    q = num(q, (unsigned long)sig);
  } else q = num(q, (unsigned long)((status >> 8) & 0xff));
  *q++ = '\n';
  return write_all(port, x, q - x);
}

/* mkdir -p of path (the whole path when last, else up to its last slash); 0 or an error message. */
static const char *make_dirs(char *path, int last) {
  long r = 0;
  for (char *s = path + 1;; s++) {
    if (*s == '/' || (*s == 0 && last)) {
      char c = *s;
      *s = 0;
      r = sys(SYS_mkdir, (long)path, 0755, 0);
      *s = c;
      if (r != 0 && r != -17 /* EEXIST */) return "mkdir failed";
    }
    if (*s == 0) return 0;
  }
}

static int do_write(char *args) {
  char *path = word(&args), *mode_s = word(&args), *how = word(&args);
  long len = parse_num(&args), mode = 0;
  if (!path || !mode_s || !how || len < 0 || path[0] != '/') return say("fail bad write header\n");
  for (char *m = mode_s; *m; m++) mode = mode * 8 + (*m - '0');
  const char *e = make_dirs(path, 0);
  long fd = -1;
  if (!e) {
    long flags = 01 | 0100 | 02000000 | (how[0] == 'a' ? 02000 : 01000); /* WRONLY|CREAT|CLOEXEC|APPEND or TRUNC */
    fd = sys(SYS_open, (long)path, flags, mode);
    if (fd < 0) e = "open failed";
  }
  int r = read_exact(0, (int)fd, len);
  if (r < 0) {
    if (fd >= 0) sys(SYS_close, fd, 0, 0);
    return -1;
  }
  if (r > 0 && !e) e = "write failed";
  if (!e && how[0] != 'a' && sys(SYS_fchmod, fd, mode, 0) != 0) e = "fchmod failed"; /* like cat >> */
  if (fd >= 0 && sys(SYS_close, fd, 0, 0) != 0 && !e) e = "close failed";
  if (e) return say("fail ") == 0 && say(e) == 0 ? say("\n") : -1;
  return say("ok\n");
}

static int handle(char *line) {
  char *rest = line, *c = word(&rest);
  if (!c) return 0;
  if (eq(c, "ping")) {
    char out[160] = "pong ", *q = out + 5;
    for (char *w = word(&rest); w && *w && q < out + 150; w++) *q++ = *w;
    *q++ = '\n';
    return write_all(port, out, q - out);
  }
  if (eq(c, "exec")) return do_exec(rest);
  if (eq(c, "write")) return do_write(rest);
  if (eq(c, "mkdir")) {
    char *path = word(&rest);
    const char *e = path && path[0] == '/' ? make_dirs(path, 1) : "bad path";
    if (!e) return say("ok\n");
    return say("fail ") == 0 && say(e) == 0 ? say("\n") : -1;
  }
  if (eq(c, "restore")) {
    char *epoch = word(&rest), *seed = word(&rest), *cidr = word(&rest), *gw = word(&rest), *dns = word(&rest);
    char *prefix = 0;
    if (cidr) {
      for (char *s = cidr; *s; s++)
        if (*s == '/') {
          *s = 0;
          prefix = s + 1;
        }
    }
    const char *e = !epoch || !seed || (cidr && (!prefix || !gw || !dns)) ? "usage: restore <epoch-ns> <seed-hex> [<ip>/<prefix> <gw> <dns>]"
                                                                          : paws_restore(epoch, seed, cidr, prefix, gw, dns);
    if (!e) return say("ok\n");
    return say("fail ") == 0 && say(e) == 0 ? say("\n") : -1;
  }
  if (eq(c, "kill")) return 0; /* exec already over */
  int pty = pty_line(c, rest);
  if (pty <= 0) return pty;
  return say("fail unknown command\n");
}

/* Requests one by one, and the open shells' terminals between them; returns when the host went away. */
static void serve(void) {
  u64 chld = 1UL << (17 - 1);
  long sfd = sys4(SYS_signalfd4, -1, (long)&chld, 8, 04000 | 02000000 /* NONBLOCK|CLOEXEC */);
  struct pollfd p[2 + PTY_MAX];
  for (;;) {
    char *l;
    while ((l = take_line()))
      if (handle(l) != 0) goto done;
    p[0] = (struct pollfd){ port, 1, 0 };
    p[1] = (struct pollfd){ (int)sfd, 1, 0 };
    int np = pty_polls(p + 2);
    /* without a signalfd, exited shells are noticed by polling every 50 ms */
    long n = sys(SYS_poll, (long)p, 2 + np, sfd < 0 ? 50 : -1);
    if (n == -4) continue;
    if (sfd >= 0 && p[1].revents) {
      char info[128];
      while (sys(SYS_read, sfd, (long)info, sizeof info) > 0) {}
    }
    if (pty_serve(p + 2, np) != 0) break;
    if (p[0].revents && fill() <= 0) break;
  }
done:
  if (sfd >= 0) sys(SYS_close, sfd, 0, 0);
}

__attribute__((used)) void run(long argc, char **argv) {
  if (argc != 2) {
    write_all(2, "usage: paws-agent <port-device>\n", 32);
    sys(SYS_exit, 2, 0, 0);
  }
  set_signal(13, 1 /* SIGPIPE: SIG_IGN, a lost host is an EPIPE */);
  set_signal(17, 0 /* SIGCHLD: SIG_DFL, so wait4 sees the exit */);
  u64 chld = 1UL << (17 - 1);
  sys4(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, (long)&chld, 0, 8);
  for (;;) {
    port = (int)sys(SYS_open, (long)argv[1], 2 | 02000000 /* O_RDWR|O_CLOEXEC */, 0);
    if (port >= 0) {
      do { /* each host in turn, the port kept open while there is none (EOF) */
        in_start = in_end = 0;
        last_fill = 0;
        serve();
        pty_hangup_all();
        if (last_fill == 0) pause_ms(50);
      } while (last_fill >= 0);
      sys(SYS_close, port, 0, 0);
    }
    pause_ms(50);
  }
}

__asm__(".global _start\n_start:\n  mov (%rsp), %rdi\n  lea 8(%rsp), %rsi\n  and $-16, %rsp\n  call run\n  hlt\n");
