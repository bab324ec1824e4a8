/*
 * paws-nothp COMMAND [ARGS...]: runs COMMAND with transparent huge pages off for it and its
 * children (PR_SET_THP_DISABLE survives fork and exec). QEMU asks for huge pages for TCG's
 * translated-code buffer (MADV_HUGEPAGE), so every idle VM held 16 MiB of it resident in 2 MiB
 * pages for ~12 MiB of code; in 4 KiB pages it holds what it uses.
 */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: paws-nothp COMMAND [ARGS...]\n");
    return 2;
  }
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) perror("paws-nothp: prctl(PR_SET_THP_DISABLE)");
  execvp(argv[1], argv + 1);
  perror(argv[1]);
  return 127;
}
