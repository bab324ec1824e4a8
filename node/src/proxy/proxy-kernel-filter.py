"""
The proxy's kernel filter (node/src/proxy/ProxySandbox.ts): runs as the proxy's own unprivileged
uid, right after setpriv, then execs the proxy in place. Debian 12 has no tool that applies
Landlock or seccomp (util-linux 2.38's setpriv lacks both), python3's ctypes can, no compiler needed.

- Landlock (any ABI): every right that changes the file system is handled and none granted, so
  the proxy can create, write, truncate, rename or delete nothing anywhere; reads are unaffected.
- seccomp (x86_64): the syscalls an exploited proxy would use to reach the kernel or other
  processes fail with EPERM (ptrace, process_vm_*, mount family, namespaces, keyrings, bpf,
  perf, userfaultfd, modules, kexec, io_uring); clone with a namespace flag too, and clone3 gets
  ENOSYS so glibc falls back to clone, whose flags a filter can see. Other ABIs (x32): EPERM.
Kernels without Landlock, or other architectures, get what they support; failure to install an
available filter is fatal (exit 126), never silently skipped.
"""
import ctypes
import os
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def fail(what):
    sys.stderr.write(f"paws proxy filter: {what}: {os.strerror(ctypes.get_errno())}\n")
    sys.exit(126)


if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    fail("no_new_privs")

# Landlock: handle every right that changes the file system and grant none of them anywhere.
abi = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
if abi >= 1:
    rights = (1 << 1) | sum(1 << b for b in range(4, 13))  # WRITE_FILE, REMOVE_*, MAKE_*
    if abi >= 2:
        rights |= 1 << 13  # REFER
    if abi >= 3:
        rights |= 1 << 14  # TRUNCATE
    attr = ctypes.create_string_buffer(struct.pack("Q", rights))
    fd = libc.syscall(444, attr, 8, 0)
    if fd < 0:
        fail("landlock_create_ruleset")
    if libc.syscall(446, fd, 0) != 0:  # landlock_restrict_self
        fail("landlock_restrict_self")
    os.close(fd)

# seccomp (x86_64 numbers): refuse what an exploited proxy would use to reach the kernel or
# other processes. clone3 gets ENOSYS (glibc falls back to clone, whose flags are checked here).
if os.uname().machine == "x86_64":
    EPERM, ENOSYS = 1, 38
    deny = {101: EPERM, 310: EPERM, 311: EPERM, 165: EPERM, 166: EPERM, 155: EPERM, 161: EPERM,
            272: EPERM, 308: EPERM, 248: EPERM, 249: EPERM, 250: EPERM, 321: EPERM, 298: EPERM,
            323: EPERM, 246: EPERM, 320: EPERM, 175: EPERM, 313: EPERM, 176: EPERM, 169: EPERM,
            167: EPERM, 168: EPERM, 163: EPERM, 303: EPERM, 304: EPERM, 425: ENOSYS, 426: ENOSYS,
            427: ENOSYS, 435: ENOSYS}
    ALLOW, ERRNO, KILL = 0x7FFF0000, 0x00050000, 0x80000000
    ins = lambda code, k, jt=0, jf=0: struct.pack("HBBI", code, jt, jf, k)
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    prog = [ins(LD, 4), ins(JEQ, 0xC000003E, 1, 0), ins(RET, KILL), ins(LD, 0),
            ins(JGE, 0x40000000, 0, 1), ins(RET, ERRNO | EPERM)]  # x32 ABI
    for nr, errno in deny.items():
        prog += [ins(JEQ, nr, 0, 1), ins(RET, ERRNO | errno)]
    # clone (56) with any namespace flag: no new user (or other) namespaces.
    prog += [ins(JEQ, 56, 0, 3), ins(LD, 16), ins(JSET, 0x7E020080, 0, 1), ins(RET, ERRNO | EPERM),
             ins(RET, ALLOW)]
    code = b"".join(prog)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HxxxxxxQ", len(prog), ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog)
    if libc.prctl(22, 2, ctypes.addressof(fbuf), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        fail("seccomp")

os.execv(sys.argv[1], sys.argv[1:])
