// The seed's memory hog, for the memory-limit tests. Built static, so it runs inside any
// container image when bind-mounted there.
//   memhog        allocates and touches 100 KB blocks until something stops it
//   memhog MB     the same, but after MB MiB it prints "done" and exits 0
// Every page is locked as it is touched (mlockall MCL_ONFAULT), so the memory can neither be
// reclaimed nor swapped: a memory limit can only end it with the OOM killer. After each whole
// MiB it prints "allocated N MiB" (unbuffered), so a test can see how far it got.
//   --swappable   no mlockall: the pages may be swapped out (the swap-limit tests)
//   --hold        after "done", wait for a signal instead of exiting, so the test can read
//                 the cgroup's counters while the memory is still held
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BLOCK (100 * 1024)
#define MIB (1024L * 1024L)

static void say(const char* text) {
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(1, text, len);
        if (n <= 0) return;
        text += n;
        len -= (size_t)n;
    }
}

int main(int argc, char** argv) {
    long cap_mib = -1;
    int swappable = 0, hold = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--swappable") == 0) swappable = 1;
        else if (strcmp(argv[i], "--hold") == 0) hold = 1;
        else if (cap_mib < 0 && (cap_mib = strtol(argv[i], NULL, 10)) > 0) continue;
        else cap_mib = 0;
    }
    if (cap_mib == 0 || (hold && cap_mib < 0)) {
        fprintf(stderr, "usage: memhog [--swappable] [--hold] [MB] (--hold needs MB)\n");
        return 2;
    }
    // Without the lock the limit could still hold, but a host with swap would page the hog
    // out instead of killing it. A container without CAP_IPC_LOCK may be refused: go on.
    if (!swappable && mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) perror("memhog: mlockall");

    long total = 0, reported = 0;
    for (;;) {
        char* block = malloc(BLOCK);
        if (!block) {
            perror("memhog: malloc");
            return 1;
        }
        memset(block, 0x5a, BLOCK);
        total += BLOCK;
        while (total / MIB > reported) {
            char line[64];
            snprintf(line, sizeof line, "allocated %ld MiB\n", ++reported);
            say(line);
        }
        if (cap_mib > 0 && total >= cap_mib * MIB) {
            say("done\n");
            while (hold) pause();
            return 0;
        }
    }
}
