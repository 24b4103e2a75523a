// What the OCI image formats say, shared by registry pulls (registry.cpp) and archive loads
// (images/oci_load.cpp): layer media types and the runtime defaults of an image config.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "fetch/layer_stream.hpp"
#include "images/store.hpp"

namespace srl {

// The compression a layer media type names; throws for types srlaunch cannot unpack
// (foreign or nondistributable layers). `what` names the layer in the error.
LayerCompression layer_compression(const std::string& media_type, const std::string& what);

// Cmd, Entrypoint, Env, WorkingDir and User of an image config ({"config": {...}}); missing
// or null fields (Docker writes "Entrypoint": null) are empty.
ImageConfig runtime_config(const nlohmann::json& image_config);

}  // namespace srl
