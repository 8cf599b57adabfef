/*
 * The nonewprivs test image's program: installed setuid root, it reports the effective uid it ends up
 * with, so that a test can tell whether allowPrivilegeEscalation=false (no_new_privs) took effect.
 */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  printf("Effective uid: %u\n", (unsigned)geteuid());
  return 0;
}
