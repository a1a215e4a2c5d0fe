/* The pod sandbox's process for the cri test layer's locally built image
 * (what registry.k8s.io/pause is, minus the zombie reaping no test needs):
 * it holds the pod's namespaces open until it is told to stop. Static, so the
 * image needs no libc. As PID 1 of its pid namespace it gets no default
 * signal actions, hence the explicit handlers. */
#include <signal.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    for (;;) pause();
}
