#include "fetch/digest.hpp"

#include <openssl/evp.h>

#include <utility>

#include "launcher/error.hpp"

namespace srl {

Digester::Digester(Algorithm a) : ctx_(EVP_MD_CTX_new()), algorithm_(a) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, a == Algorithm::sha256 ? EVP_sha256() : EVP_sha512(), nullptr) != 1)
        throw Error("cannot start a digest (OpenSSL)");
}

Digester::~Digester() { EVP_MD_CTX_free(ctx_); }

Digester::Digester(Digester&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)), algorithm_(o.algorithm_) {}

Digester& Digester::operator=(Digester&& o) noexcept {
    std::swap(ctx_, o.ctx_);
    algorithm_ = o.algorithm_;
    return *this;
}

void Digester::update(const void* data, std::size_t n) {
    if (n && EVP_DigestUpdate(ctx_, data, n) != 1) throw Error("digest update failed (OpenSSL)");
}

std::string Digester::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_, md, &len) != 1) throw Error("digest failed (OpenSSL)");
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) {
        s += digits[md[i] >> 4];
        s += digits[md[i] & 15];
    }
    return s;
}

std::string sha256_digest(std::string_view data) {
    Digester d;
    d.update(data);
    return d.digest();
}

void check_sha256_digest(const std::string& digest, const std::string& what) {
    bool ok = digest.size() == 71 && digest.starts_with("sha256:");
    for (std::size_t i = 7; ok && i < digest.size(); ++i)
        ok = (digest[i] >= '0' && digest[i] <= '9') || (digest[i] >= 'a' && digest[i] <= 'f');
    if (!ok) throw Error("invalid digest \"" + digest + "\" in " + what + " (want sha256:<64 hex digits>)");
}

}  // namespace srl
