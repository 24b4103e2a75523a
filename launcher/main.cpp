#include <cstdio>
#include <exception>

#include "launcher/cli.hpp"
#include "launcher/error.hpp"

int main(int argc, char** argv) {
    try {
        return srl::main_cli(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "srlaunch: %s\n", srl::one_line(e.what()).c_str());
        return 125;  // like docker run: srlaunch itself failed
    }
}
