#define CATCH_CONFIG_RUNNER
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>

int main(int argc, char** argv) {
    // Workloads killed by SIGQUIT must not litter the build tree with core files.
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    std::signal(SIGPIPE, SIG_IGN);
    return Catch::Session().run(argc, argv);
}
