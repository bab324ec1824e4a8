/*
 * paws-agent's PTY channel (included by paws-agent.c, after its port helpers): interactive login
 * shells for `paws shell`, several at once, served between and during the agent's requests. Its
 * messages never get an answer line, so they may arrive at any time, even while an exec runs:
 *   pty <id> <rows> <cols>          opens a login shell on a new PTY (TERM=xterm-256color)
 *   pin <id> <n>\n<n bytes>         keystrokes (a ^C byte reaches the foreground process group
 *                                   through the line discipline, like any terminal's)
 *   pwin <id> <rows> <cols>         TIOCSWINSZ: the kernel sends the shell SIGWINCH
 *   pclose <id>                     hangs the shell up (SIGHUP to its session)
 * and the agent sends, interleaved with any other answer or frame:
 *   p <id> <n>\n<n bytes>           what the terminal shows
 *   q <id> <code> | q <id> s<sig> | q <id> fail <message>   the shell ended; the id is free again
 * Ids are the node's (decimal). Losing the host hangs every shell up.
 */

#define PTY_MAX 16
struct pty { long id; int fd; long pid; int hup; };
static struct pty ptys[PTY_MAX]; /* fd 0 means free: the agent's stdin is never a PTY master */

static char *const pty_env[] = {
  "USER=root", "LOGNAME=root", "HOME=/root", "SHELL=/bin/sh", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
  "TERM=xterm-256color", 0,
};

static struct pty *pty_find(long id) {
  for (int i = 0; i < PTY_MAX; i++)
    if (ptys[i].fd > 0 && ptys[i].id == id) return &ptys[i];
  return 0;
}

static void pty_winsize(int fd, long rows, long cols) {
  unsigned short ws[4] = { (unsigned short)rows, (unsigned short)cols, 0, 0 };
  sys(SYS_ioctl, fd, 0x5414 /* TIOCSWINSZ */, (long)ws);
}

static int pty_say_end(long id, const char *what) {
  char h[64], *p = h;
  *p++ = 'q';
  *p++ = ' ';
  p = num(p, (unsigned long)id);
  *p++ = ' ';
  return write_all(port, h, p - h) == 0 && say(what) == 0 ? say("\n") : -1;
}

/* The child: its own session with the PTY as controlling terminal, then a login shell. */
static void pty_child(const char *slave_path) {
  for (int s = 1; s <= 64; s++)
    if (s != 9 && s != 19) set_signal(s, 0 /* SIG_DFL */);
  u64 none = 0;
  sys4(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, (long)&none, 0, 8);
  sys(SYS_setsid, 0, 0, 0);
  long slave = sys(SYS_open, (long)slave_path, 2 /* O_RDWR */, 0);
  if (slave < 0) sys(SYS_exit, 126, 0, 0);
  sys(SYS_ioctl, slave, 0x540E /* TIOCSCTTY */, 0);
  for (int fd = 0; fd < 3; fd++) sys(SYS_dup2, slave, fd, 0);
  if (slave > 2) sys(SYS_close, slave, 0, 0);
  if (sys(SYS_chdir, (long)"/root", 0, 0) != 0) sys(SYS_chdir, (long)"/", 0, 0);
  char *bash[] = { "-bash", 0 }, *sh[] = { "-sh", 0 }; /* a leading '-': a login shell, like sshd's */
  sys(SYS_execve, (long)"/bin/bash", (long)bash, (long)pty_env);
  sys(SYS_execve, (long)"/bin/sh", (long)sh, (long)pty_env);
  write_all(2, "paws-agent: cannot exec a shell\r\n", 33);
  sys(SYS_exit, 127, 0, 0);
}

static int pty_open(long id, long rows, long cols) {
  if (id < 0 || pty_find(id)) return pty_say_end(id < 0 ? 0 : id, "fail bad or busy id");
  struct pty *t = 0;
  for (int i = 0; i < PTY_MAX && !t; i++)
    if (ptys[i].fd <= 0 && ptys[i].pid <= 0) t = &ptys[i];
  if (!t) return pty_say_end(id, "fail too many shells");
  long m = sys(SYS_open, (long)"/dev/ptmx", 2 | 0400 | 04000 | 02000000 /* RDWR|NOCTTY|NONBLOCK|CLOEXEC */, 0);
  if (m < 0) return pty_say_end(id, "fail cannot open /dev/ptmx");
  int unlock = 0;
  unsigned int n = 0;
  if (sys(SYS_ioctl, m, 0x40045431 /* TIOCSPTLCK */, (long)&unlock) != 0 ||
      sys(SYS_ioctl, m, 0x80045430 /* TIOCGPTN */, (long)&n) != 0) {
    sys(SYS_close, m, 0, 0);
    return pty_say_end(id, "fail cannot unlock the pty");
  }
  char path[32] = "/dev/pts/";
  *num(path + 9, n) = 0;
  pty_winsize((int)m, rows, cols);
  long pid = sys(SYS_fork, 0, 0, 0);
  if (pid == 0) pty_child(path);
  if (pid < 0) {
    sys(SYS_close, m, 0, 0);
    return pty_say_end(id, "fail fork");
  }
  t->id = id;
  t->fd = (int)m;
  t->pid = pid;
  t->hup = 0;
  return 0;
}

/* Sends what the shell's terminal has ready; marks it hung up once its last writer is gone. */
static int pty_drain(struct pty *t) {
  for (int i = 0; i < 16; i++) {
    long r = sys(SYS_read, t->fd, (long)chunk, sizeof chunk);
    if (r == -4) continue;
    if (r == -11) return 0;
    if (r <= 0) {
      t->hup = 1; /* EIO: the shell and everything it started closed the terminal */
      return 0;
    }
    char h[48], *p = h;
    *p++ = 'p';
    *p++ = ' ';
    p = num(p, (unsigned long)t->id);
    *p++ = ' ';
    p = num(p, (unsigned long)r);
    *p++ = '\n';
    if (write_all(port, h, p - h) != 0 || write_all(port, chunk, r) != 0) return -1;
  }
  return 0;
}

/* The shell's session (its pid is the session's and group's id) gets SIGHUP; pid 0 would mean our own. */
static void pty_hangup(struct pty *t, long pid) {
  if (pid > 0) {
    sys(SYS_kill, -pid, 1 /* SIGHUP */, 0);
    sys(SYS_kill, -pid, 18 /* SIGCONT: stopped jobs see the hangup too */, 0);
  }
  sys(SYS_close, t->fd, 0, 0);
  t->fd = 0; /* the pid stays until reaped */
}

/* Keystrokes for the shell; a shell that reads none for a second loses the rest of them. */
static int pty_input(long id, long len) {
  struct pty *t = pty_find(id);
  if (!t) return read_exact(0, -1, len) < 0 ? -1 : 0;
  static char keys[4096];
  while (len > 0) {
    long k = len < (long)sizeof keys ? len : (long)sizeof keys;
    if (read_exact(keys, -1, k) != 0) return -1;
    len -= k;
    for (long off = 0, tries = 0; off < k && tries < 200;) {
      long w = sys(SYS_write, t->fd, (long)keys + off, k - off);
      if (w > 0) off += w;
      else if (w == -11 || w == -4) { /* the terminal's input queue is full: let its output flow */
        if (pty_drain(t) != 0) return -1;
        pause_ms(5);
        tries++;
      } else break;
    }
  }
  return 0;
}

/* A PTY message (1 if the line is none); -1 when the host went away. */
static int pty_line(char *c, char *rest) {
  if (!eq(c, "pty") && !eq(c, "pin") && !eq(c, "pwin") && !eq(c, "pclose")) return 1;
  long id = parse_num(&rest);
  if (eq(c, "pin")) return id < 0 ? -1 : pty_input(id, parse_num(&rest)); /* a bad length desyncs: drop the host */
  if (eq(c, "pclose")) {
    struct pty *t = pty_find(id);
    if (t) pty_hangup(t, t->pid);
    return 0;
  }
  long rows = parse_num(&rest), cols = parse_num(&rest);
  if (rows <= 0 || cols <= 0 || rows > 65535 || cols > 65535) return eq(c, "pty") ? pty_say_end(id < 0 ? 0 : id, "fail bad size") : 0;
  if (eq(c, "pty")) return pty_open(id, rows, cols);
  struct pty *t = pty_find(id);
  if (t) pty_winsize(t->fd, rows, cols);
  return 0;
}

/* Adds the open terminals to a poll set; returns how many. */
static int pty_polls(struct pollfd *p) {
  int n = 0;
  for (int i = 0; i < PTY_MAX; i++)
    if (ptys[i].fd > 0 && !ptys[i].hup) p[n++] = (struct pollfd){ ptys[i].fd, 1, 0 };
  return n;
}

/* After a poll: output of the ready terminals, then shells that exited. -1 when the host went away. */
static int pty_serve(struct pollfd *p, int n) {
  for (int j = 0; j < n; j++) {
    if (!p[j].revents) continue;
    for (int i = 0; i < PTY_MAX; i++)
      if (ptys[i].fd == p[j].fd && pty_drain(&ptys[i]) != 0) return -1;
  }
  for (int i = 0; i < PTY_MAX; i++) {
    struct pty *t = &ptys[i];
    int status = 0;
    long pid = t->pid;
    if (pid <= 0 || sys4(SYS_wait4, pid, (long)&status, 1 /* WNOHANG */, 0) != pid) continue;
    t->pid = 0;
    if (t->fd <= 0) continue; /* hung up by the node: it expects no end */
    if (pty_drain(t) != 0) return -1;
    char x[24], *q = x;
    if (status & 0x7f) *q++ = 's', q = num(q, (unsigned long)(status & 0x7f));
    else q = num(q, (unsigned long)((status >> 8) & 0xff));
    *q = 0;
    long id = t->id;
    pty_hangup(t, pid); /* what it left running in its session */
    if (pty_say_end(id, x) != 0) return -1;
  }
  return 0;
}

/* The host went away: nobody will read these terminals again. */
static void pty_hangup_all(void) {
  for (int i = 0; i < PTY_MAX; i++)
    if (ptys[i].fd > 0) pty_hangup(&ptys[i], ptys[i].pid);
}
