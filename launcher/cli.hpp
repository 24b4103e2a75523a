#pragma once

namespace srl {

// Parses the command line and runs the command. Returns the exit status; throws Error for
// failures, which main() prints once and turns into 125.
int main_cli(int argc, char** argv);

}  // namespace srl
