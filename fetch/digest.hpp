// Streaming message digests (OpenSSL EVP), for content addresses ("sha256:<hex>") and the
// Alpine mirror's sha256/sha512 sums.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace srl {

class Digester {
public:
    enum class Algorithm { sha256, sha512 };
    explicit Digester(Algorithm a = Algorithm::sha256);
    ~Digester();
    Digester(Digester&&) noexcept;
    Digester& operator=(Digester&&) noexcept;

    void update(const void* data, std::size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    // Lower-case hex of everything so far; the digester is finished afterwards.
    std::string hex();
    // "sha256:<hex>"
    std::string digest() { return std::string(algorithm_ == Algorithm::sha256 ? "sha256:" : "sha512:") + hex(); }

private:
    EVP_MD_CTX* ctx_;
    Algorithm algorithm_;
};

std::string sha256_digest(std::string_view data);  // "sha256:<hex>"

// A digest as OCI writes it: "sha256:" and 64 lower-case hex digits (the only algorithm a
// registry must support, and the only one accepted here). Throws on anything else.
void check_sha256_digest(const std::string& digest, const std::string& what);

}  // namespace srl
