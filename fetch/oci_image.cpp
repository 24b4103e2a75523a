#include "fetch/oci_image.hpp"

#include "launcher/error.hpp"

namespace srl {
namespace {
using nlohmann::json;

std::vector<std::string> strings(const json& c, const char* key) {
    std::vector<std::string> out;
    if (c.contains(key) && c[key].is_array())
        for (const auto& v : c[key])
            if (v.is_string()) out.push_back(v);
    return out;
}

std::string text(const json& c, const char* key) {
    return c.contains(key) && c[key].is_string() ? c[key].get<std::string>() : "";
}

}  // namespace

LayerCompression layer_compression(const std::string& media_type, const std::string& what) {
    if (media_type == "application/vnd.oci.image.layer.v1.tar+gzip" ||
        media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip")
        return LayerCompression::gzip;
    if (media_type == "application/vnd.oci.image.layer.v1.tar+zstd") return LayerCompression::zstd;
    if (media_type == "application/vnd.oci.image.layer.v1.tar" || media_type == "application/vnd.docker.image.rootfs.diff.tar")
        return LayerCompression::none;
    throw Error(what + " has media type \"" + media_type + "\", which srlaunch cannot unpack");
}

ImageConfig runtime_config(const json& image_config) {
    const json c = image_config.contains("config") && image_config["config"].is_object() ? image_config["config"] : json::object();
    ImageConfig out;
    out.entrypoint = strings(c, "Entrypoint");
    out.cmd = strings(c, "Cmd");
    out.env = strings(c, "Env");
    out.workdir = text(c, "WorkingDir");
    out.user = text(c, "User");
    return out;
}

}  // namespace srl
