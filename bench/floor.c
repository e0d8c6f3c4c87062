/* The floor of any link-time noting wrapper (benchmark part 6): only what such a wrapper cannot
 * avoid doing, in C, statically linked, with no checks, no error reporting and no note encoding.
 *
 *   floor RESERVATION OUTPUT RUNPATH -- TOOL ARGS...
 *
 * It runs TOOL with the reservation object first among its arguments (posix_spawnp) and waits;
 * reads OUTPUT whole; lists each directory of RUNPATH (a `:` list) once (open, getdents64 until
 * it returns 0, close), and reads the first 64 bytes of the first `lib*.so*` entry of each, as
 * the loader's header check needs (open, read, close); then writes 4 KiB back where they were
 * (the note's one write; same bytes, so the output is unchanged). Its cost against the bare
 * link is what ldnote's own cost is measured against. Exit status: the tool's when it fails,
 * else 0 (2 when a step fails).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct linux_dirent64 {
  unsigned long long d_ino;
  long long d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

int main(int argc, char **argv) {
  if (argc < 6 || strcmp(argv[4], "--") != 0) {
    fprintf(stderr, "usage: floor RESERVATION OUTPUT RUNPATH -- TOOL ARGS...\n");
    return 2;
  }
  char **cmd = calloc((size_t)argc, sizeof *cmd);
  int k = 0;
  cmd[k++] = argv[5];
  cmd[k++] = argv[1];
  for (int i = 6; i < argc; i++)
    cmd[k++] = argv[i];
  pid_t pid;
  int status;
  if (posix_spawnp(&pid, argv[5], NULL, NULL, cmd, environ) != 0)
    return 127;
  if (waitpid(pid, &status, 0) < 0)
    return 2;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;

  int out = open(argv[2], O_RDWR | O_CLOEXEC);
  static char file[1 << 20];
  ssize_t len = pread(out, file, sizeof file, 0);
  if (out < 0 || len < 0)
    return 2;

  char *runpath = strdup(argv[3]);
  char path[4096], head[64];
  static char buf[16384];
  for (char *dir = strtok(runpath, ":"); dir; dir = strtok(NULL, ":")) {
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
      continue;
    char lib[256] = "";
    long n;
    while ((n = syscall(SYS_getdents64, d, buf, sizeof buf)) > 0) {
      for (long off = 0; off < n;) {
        struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + off);
        if (!lib[0] && e->d_type == DT_REG && strncmp(e->d_name, "lib", 3) == 0 &&
            strstr(e->d_name, ".so") && strlen(e->d_name) < sizeof lib)
          strcpy(lib, e->d_name);
        off += e->d_reclen;
      }
    }
    close(d);
    if (!lib[0])
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, lib);
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0 || read(f, head, sizeof head) != (ssize_t)sizeof head)
      return 2;
    close(f);
  }
  if (len >= 8192 && pwrite(out, file + 4096, 4096, 4096) != 4096)
    return 2;
  close(out);
  return 0;
}
