#include "fetch/http.hpp"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "fetch/curl_library.hpp"

namespace srl {
namespace {

constexpr int kMaxAttemptsInAll = 30;  // even a server that always sends a little, then drops
constexpr std::size_t kErrorBodyMax = 64 * 1024;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

std::string trim(std::string s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    const auto e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool transient_status(long s) { return s == 408 || s == 429 || s >= 500; }

bool transient_curl(CURLcode c) {
    switch (c) {
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING: case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

void sleep_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    while (::nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

std::string reason(long status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

std::string find_header(const std::map<std::string, std::string>& h, const std::string& name) {
    auto it = h.find(name);
    return it == h.end() ? "" : it->second;
}

}  // namespace

HttpStatusError::HttpStatusError(long s, std::string u, std::string b, std::map<std::string, std::string> h)
    : Error("HTTP " + std::to_string(s) + (reason(s).empty() ? "" : " " + reason(s)) + " from " + u),
      status(s), url(std::move(u)), body(std::move(b)), headers(std::move(h)) {}

std::string HttpStatusError::header(const std::string& name) const { return find_header(headers, name); }
std::string HttpDocument::header(const std::string& name) const { return find_header(headers, name); }
std::string HttpBody::header(const std::string& name) const { return find_header(response_headers_, name); }

HttpBody::HttpBody(const HttpOptions& opts, HttpRequest req) : opts_(opts), req_(std::move(req)) {
    const CurlLibrary& curl = CurlLibrary::get();
    multi_ = curl.multi_init();
    if (!multi_) throw Error("cannot start a transfer of " + req_.url + ": out of memory");
    start();
}

HttpBody::~HttpBody() {
    stop();
    if (multi_) CurlLibrary::get().multi_cleanup(multi_);
}

void HttpBody::stop() {
    const CurlLibrary& curl = CurlLibrary::get();
    if (easy_) {
        curl.multi_remove_handle(multi_, easy_);
        curl.easy_cleanup(easy_);
        easy_ = nullptr;
    }
    if (headers_) {
        curl.slist_free_all(headers_);
        headers_ = nullptr;
    }
}

void HttpBody::start() {
    const CurlLibrary& curl = CurlLibrary::get();
    easy_ = curl.easy_init();
    if (!easy_) throw Error("cannot start a transfer of " + req_.url + ": out of memory");
    ++attempts_;
    status_ = 0;
    status_ok_ = false;
    skip_ = 0;
    error_body_.clear();
    response_headers_.clear();
    at_attempt_start_ = delivered_;

    for (const auto& h : req_.headers) headers_ = curl.slist_append(headers_, h.c_str());
    if (delivered_ > 0) headers_ = curl.slist_append(headers_, ("Range: bytes=" + std::to_string(delivered_) + "-").c_str());

    curl.easy_setopt(easy_, CURLOPT_URL, req_.url.c_str());
    curl.easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
    curl.easy_setopt(easy_, CURLOPT_USERAGENT, "srlaunch/0.1");
    // Registries redirect blob downloads to storage hosts. libcurl does not carry our
    // Authorization header over to another host, which is what a registry token wants.
    curl.easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 1L);
    curl.easy_setopt(easy_, CURLOPT_MAXREDIRS, 10L);
    curl.easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl.easy_setopt(easy_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl.easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl.easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT, 15L);
    // A stalled connection is a transient error too: under 1 KiB/s for 30 s.
    curl.easy_setopt(easy_, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl.easy_setopt(easy_, CURLOPT_LOW_SPEED_TIME, 30L);
    // No CURLOPT_ACCEPT_ENCODING: digests are over the bytes as stored, never re-encoded.
    if (!opts_.tls_verify) {
        curl.easy_setopt(easy_, CURLOPT_SSL_VERIFYPEER, 0L);
        curl.easy_setopt(easy_, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl.easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &HttpBody::on_data);
    curl.easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    curl.easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &HttpBody::on_header);
    curl.easy_setopt(easy_, CURLOPT_HEADERDATA, this);
    curl.multi_add_handle(multi_, easy_);
}

std::size_t HttpBody::on_header(char* p, std::size_t size, std::size_t n, void* self_ptr) {
    auto* self = static_cast<HttpBody*>(self_ptr);
    const std::string line(p, size * n);
    // Each response of a redirect chain starts with its status line: keep only the last one's headers.
    if (line.starts_with("HTTP/")) {
        self->response_headers_.clear();
    } else if (auto colon = line.find(':'); colon != std::string::npos) {
        self->response_headers_[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    return size * n;
}

std::size_t HttpBody::on_data(char* p, std::size_t size, std::size_t n, void* self) {
    return static_cast<HttpBody*>(self)->take(p, size * n);
}

// The first body bytes of an attempt decide what it is: the (rest of the) body, or an error page.
std::size_t HttpBody::take(const char* p, std::size_t n) {
    if (status_ == 0) {
        CurlLibrary::get().easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status_);
        status_ok_ = status_ >= 200 && status_ < 300;
        if (status_ok_) {
            const std::string range = header("content-range");  // "bytes START-END/TOTAL"
            if (status_ == 206 && delivered_ > 0) {
                std::uint64_t start = 0;
                if (std::sscanf(range.c_str(), "bytes %lu-", &start) != 1 || start != delivered_) {
                    skip_ = 0;
                    status_ok_ = false;  // a range we did not ask for: fail this attempt
                    return 0;
                }
            } else if (delivered_ > 0) {
                skip_ = delivered_;  // the server ignored Range and starts over
            }
            if (auto slash = range.rfind('/'); status_ == 206 && slash != std::string::npos)
                total_ = std::strtoull(range.c_str() + slash + 1, nullptr, 10);
            else if (auto len = header("content-length"); !len.empty() && status_ == 200)
                total_ = std::strtoull(len.c_str(), nullptr, 10);
        }
    }
    if (!status_ok_) {
        error_body_.append(p, std::min(n, kErrorBodyMax - std::min(kErrorBodyMax, error_body_.size())));
        return n;
    }
    std::size_t off = 0;
    if (skip_ > 0) {
        off = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, n));
        skip_ -= off;
    }
    if (buf_pos_ == buf_.size()) {
        buf_.clear();
        buf_pos_ = 0;
    }
    buf_.append(p + off, n - off);
    delivered_ += n - off;
    return n;
}

void HttpBody::finish_attempt(int result) {
    const CurlLibrary& curl = CurlLibrary::get();
    long status = status_;
    if (status == 0) curl.easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    const auto code = static_cast<CURLcode>(result);
    const bool ok_status = status >= 200 && status < 300;
    if (code == CURLE_OK && ok_status && (!total_ || delivered_ >= *total_)) {
        done_ = true;
        stop();
        return;
    }
    // Decide whether to try again; a permanent failure is thrown right here.
    std::string why;
    if (code == CURLE_OK && status != 0 && !ok_status) {
        if (!transient_status(status) || status == 0)
            throw HttpStatusError(status, req_.url, error_body_, response_headers_);
        why = "HTTP " + std::to_string(status);
    } else if (code == CURLE_OK) {
        why = "connection closed early";
    } else if (transient_curl(code) || code == CURLE_WRITE_ERROR) {
        why = curl.easy_strerror(code);
    } else {
        throw Error("cannot fetch " + req_.url + ": " + curl.easy_strerror(code));
    }
    failures_ = delivered_ > at_attempt_start_ ? 1 : failures_ + 1;
    if (failures_ >= opts_.max_attempts || attempts_ >= kMaxAttemptsInAll) {
        if (code == CURLE_OK && status >= 300) throw HttpStatusError(status, req_.url, error_body_, response_headers_);
        throw Error("cannot fetch " + req_.url + ": " + why + " (gave up after " + std::to_string(attempts_) + " attempts)");
    }
    stop();
    sleep_ms(std::min(250L << (failures_ - 1), 4000L));
    start();
}

void HttpBody::pump() {
    const CurlLibrary& curl = CurlLibrary::get();
    int running = 0;
    if (curl.multi_perform(multi_, &running) != CURLM_OK) throw Error("cannot fetch " + req_.url + ": libcurl multi error");
    int left = 0;
    while (CURLMsg* msg = curl.multi_info_read(multi_, &left)) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy_) {
            finish_attempt(msg->data.result);
            return;
        }
    }
    if (running > 0 && buf_pos_ == buf_.size()) curl.multi_poll(multi_, nullptr, 0, 1000, nullptr);
}

std::size_t HttpBody::read(char* out, std::size_t len) {
    while (buf_pos_ == buf_.size()) {
        if (done_) return 0;
        pump();
    }
    const std::size_t n = std::min(len, buf_.size() - buf_pos_);
    std::memcpy(out, buf_.data() + buf_pos_, n);
    buf_pos_ += n;
    return n;
}

HttpDocument http_get(const HttpOptions& opts, const HttpRequest& req, std::size_t max_bytes, const std::string& what) {
    HttpBody body(opts, req);
    HttpDocument doc;
    char chunk[16384];
    while (std::size_t n = body.read(chunk, sizeof chunk)) {
        if ((body.length() && *body.length() > max_bytes) || doc.body.size() + n > max_bytes)
            throw Error(what + " from " + req.url + " is larger than " + std::to_string(max_bytes / 1024) + " KiB");
        doc.body.append(chunk, n);
    }
    for (const char* name : {"content-type", "docker-content-digest", "www-authenticate", "location"})
        if (auto v = body.header(name); !v.empty()) doc.headers[name] = v;
    return doc;
}

bool is_loopback_host(const std::string& host) {
    return host == "localhost" || host.starts_with("127.") || host == "[::1]" || host == "::1";
}

}  // namespace srl
