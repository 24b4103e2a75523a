// HTTP GETs through libcurl: whole small documents (indexes, manifests, tokens) and bodies
// read on demand (layers and tarballs, which stream into digests and unpacking).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "launcher/error.hpp"

typedef void CURL;
typedef void CURLM;
struct curl_slist;

namespace srl {

struct HttpOptions {
    bool tls_verify = true;
    int max_attempts = 5;  // per stretch without progress; see HttpBody
};

struct HttpRequest {
    std::string url;
    std::vector<std::string> headers;  // "Name: value"
};

// The server answered, with a status that is not 2xx (after retries, for transient ones).
class HttpStatusError : public Error {
public:
    HttpStatusError(long status, std::string url, std::string body, std::map<std::string, std::string> headers);
    long status;
    std::string url, body;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string header(const std::string& lower_name) const;
};

// One GET whose body is read on demand. Transient failures (connection refused or reset,
// timeouts, 408, 429, 5xx) are retried with exponential backoff; when part of the body has
// already been read, the retry asks only for the rest (Range) and, if the server ignores
// Range, skips what was already delivered. The caller sees one uninterrupted byte stream.
class HttpBody {
public:
    HttpBody(const HttpOptions& opts, HttpRequest req);
    ~HttpBody();
    HttpBody(const HttpBody&) = delete;
    HttpBody& operator=(const HttpBody&) = delete;

    // Up to len bytes; 0 at the end of the body. Throws HttpStatusError or Error.
    std::size_t read(char* buf, std::size_t len);
    // Length of the whole body, once the response headers said so.
    std::optional<std::uint64_t> length() const { return total_; }
    std::uint64_t delivered() const { return delivered_; }
    // A header of the final response (after redirects); empty when absent.
    std::string header(const std::string& lower_name) const;
    const std::string& url() const { return req_.url; }

private:
    static std::size_t on_data(char* p, std::size_t size, std::size_t n, void* self);
    static std::size_t on_header(char* p, std::size_t size, std::size_t n, void* self);
    std::size_t take(const char* p, std::size_t n);
    void start();
    void stop();
    void pump();
    void finish_attempt(int curl_result);

    HttpOptions opts_;
    HttpRequest req_;
    CURLM* multi_ = nullptr;
    CURL* easy_ = nullptr;
    curl_slist* headers_ = nullptr;
    std::string buf_;             // received, not yet read
    std::size_t buf_pos_ = 0;
    std::string error_body_;      // body of a non-2xx answer, for its message
    std::map<std::string, std::string> response_headers_;
    long status_ = 0;             // of the current attempt, once known
    bool status_ok_ = false;
    std::uint64_t skip_ = 0;      // bytes a server that ignored Range sends again
    std::uint64_t delivered_ = 0; // body bytes handed to the reader, over all attempts
    std::uint64_t at_attempt_start_ = 0;
    std::optional<std::uint64_t> total_;
    int failures_ = 0;            // consecutive attempts that delivered nothing new
    int attempts_ = 0;
    bool done_ = false;
};

struct HttpDocument {
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string header(const std::string& lower_name) const;
};

// A whole, small body. `what` names the document in the error when it exceeds max_bytes.
HttpDocument http_get(const HttpOptions& opts, const HttpRequest& req, std::size_t max_bytes, const std::string& what);

// Whether plain HTTP is acceptable for a host without asking: loopback, as Docker allows.
bool is_loopback_host(const std::string& host);

}  // namespace srl
