/* sysprobe: make one raw system call from inside a container and say what came back.
 *
 *   sysprobe NR [ARG...]      syscall(NR, ARG...): prints "ok <ret>" or "err <errno> <name>"
 *   sysprobe loop N NR [ARG...]  N calls of syscall(NR, ARG...) (a cheap one: getppid,
 *                             personality(0xffffffff)); prints "ns <nanoseconds per call>"
 *
 * Built statically by tests/integration/process/sysprobe.py so a busybox rootfs can run it.
 * Arguments are numbers in C syntax (0x... allowed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long num(const char *s) { return (long)strtoull(s, NULL, 0); }

static const char *name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return "other";
    }
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "loop") == 0) {
        long n = num(argv[2]), nr = num(argv[3]), x[3] = {0, 0, 0};
        for (int i = 4; i < argc && i < 7; i++)
            x[i - 4] = num(argv[i]);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i++)
            syscall(nr, x[0], x[1], x[2]);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
        printf("ns %.1f\n", ns / (double)n);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: sysprobe NR [ARG...] | sysprobe loop N NR\n");
        return 2;
    }
    long a[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 2; i < argc && i < 8; i++)
        a[i - 2] = num(argv[i]);
    errno = 0;
    long r = syscall(num(argv[1]), a[0], a[1], a[2], a[3], a[4], a[5]);
    if (r == -1)
        printf("err %d %s\n", errno, name(errno));
    else
        printf("ok %ld\n", r);
    return 0;
}
