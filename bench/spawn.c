/* One more process and nothing else (benchmark part 1): what any wrapper between the build tool
 * and the compiler driver costs before it does any work of its own, in C, statically linked.
 *
 *   spawn TOOL ARGS...
 *
 * It runs TOOL with ARGS (posix_spawnp, the environment unchanged) and waits for it; it reads
 * and writes nothing. Exit status: the tool's (127 when it cannot be started). Against the bare
 * link it shows what the extra process level alone costs the link's process tree, which part 1
 * reports beside ldnote's added time. With mold that cost was two to three times what it is with
 * GNU ld, and the same as GNU ld's with `--threads=1`: the extra level changes how much CPU
 * mold's worker threads take, while the wall time barely moves.
 */
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
  pid_t pid;
  int status;
  if (argc < 2 || posix_spawnp(&pid, argv[1], NULL, NULL, argv + 1, environ) != 0)
    return 127;
  if (waitpid(pid, &status, 0) < 0)
    return 127;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
