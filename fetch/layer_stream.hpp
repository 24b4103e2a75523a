// One layer from the network into the image being pulled, in a single pass and without a
// temporary copy:
//
//   HttpBody -> sha256 (compressed) -> libarchive, raw format + decompression filter
//            -> sha256 (uncompressed: the diff_id) -> libarchive, tar format -> apply_layer()
//
// Digests are compared once the stream ends. The layer has by then been written into the
// staging tree, which the caller discards on any error, so nothing unverified is ever stored.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "fetch/http.hpp"
#include "images/extract.hpp"

namespace srl {

enum class LayerCompression { none, gzip, zstd };

struct LayerExpectation {
    std::string what;                   // names the layer in errors
    LayerCompression compression = LayerCompression::gzip;
    std::string digest;                 // sha256 of the bytes as sent; empty: not checked here
    std::optional<std::uint64_t> size;  // bytes as sent
    std::string diff_id;                // sha256 of the uncompressed tar; empty: not checked
    bool sha512 = false;                // also compute sha512 of the bytes as sent
};

struct LayerResult {
    std::string digest;      // "sha256:..." of the bytes as sent
    std::string sha512_hex;  // when asked for
    std::uint64_t size = 0;  // bytes as sent
    UnpackStats unpacked;
};

// Throws srl::Error on a transfer error, a digest or size mismatch, or an unsafe entry.
LayerResult apply_streamed_layer(HttpBody& body, int root_fd, const LayerExpectation& expect,
                                 const std::function<void(std::uint64_t)>& on_bytes);

}  // namespace srl
