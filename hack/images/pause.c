/*
 * rudder's pod sandbox process (registry.k8s.io/pause:3.10 in the local registry).
 *
 * It only has to exist: as long as it runs, the pod's namespaces stay alive. As PID 1 of the pod's
 * PID namespace it inherits orphans, so it reaps them to keep zombies from piling up. It stops on
 * SIGINT or SIGTERM.
 *
 * The signals are blocked and collected with sigwaitinfo(): a blocked signal is queued even for a
 * namespace's PID 1 (which otherwise drops signals whose disposition is the default), and there is
 * no handler/loop race to get wrong.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
    puts("rudder-pause 1");
    return 0;
  }

  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGINT);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &wanted, NULL) != 0) {
    perror("pause: failed to block signals");
    return 1;
  }

  for (;;) {
    int sig = sigwaitinfo(&wanted, NULL);
    if (sig == SIGCHLD) {
      /* One SIGCHLD may stand for several exits: reap until none is left. */
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
    } else if (sig == SIGINT || sig == SIGTERM) {
      fprintf(stderr, "pause: stopping on signal %d\n", sig);
      return 0;
    }
    /* sig < 0 means EINTR: wait again. */
  }
}
