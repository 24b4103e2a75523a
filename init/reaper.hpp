// Reaping and ending every process srinit is responsible for.
#pragma once

#include <sys/types.h>

namespace srinit {

struct Reaped {
    bool workload_exited = false;  // the workload was among the reaped
    int workload_status = 0;       // its wait status, when workload_exited
    bool children_left = true;     // false once waitpid says we have no child at all
};

// Collects every child that has exited, however many SIGCHLDs coalesced into one.
Reaped reap_all(pid_t workload);

// Sends sig to every process srinit is responsible for except itself: as PID 1 that is the
// whole PID namespace; otherwise (as subreaper) every descendant.
void signal_everyone(int sig);

}  // namespace srinit
