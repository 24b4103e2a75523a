// What srlaunch tells srinit: the config stream srinit reads from fd 3 (see init/config.hpp
// for the format), built from the spec.
#pragma once

#include <string>

#include "launcher/spec.hpp"

namespace srl {

std::string srinit_config_stream(const ContainerSpec& spec);

}  // namespace srl
