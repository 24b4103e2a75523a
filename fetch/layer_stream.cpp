#include "fetch/layer_stream.hpp"

#include <sys/prctl.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "fetch/digest.hpp"
#include "images/archive.hpp"
#include "images/layer.hpp"

namespace srl {
namespace {

constexpr std::size_t kChunk = 256 * 1024;
constexpr std::size_t kQueued = 16;  // chunks of decompressed tar between the two threads

std::string message(archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

struct Chunk {
    std::unique_ptr<char[]> data;
    std::size_t size = 0;
};

// Decompressed tar on its way from the network thread to the thread that writes files.
// Bounded, so a fast network cannot run ahead of a slow disk by more than kQueued chunks;
// buffers go back and forth instead of being allocated (and cleared) for every chunk.
class ChunkQueue {
public:
    Chunk empty_chunk() {
        std::lock_guard lock(m_);
        if (spare_.empty()) return {std::make_unique_for_overwrite<char[]>(kChunk), 0};
        Chunk c = std::move(spare_.back());
        spare_.pop_back();
        return c;
    }
    void recycle(Chunk c) {
        if (!c.data) return;
        std::lock_guard lock(m_);
        c.size = 0;
        spare_.push_back(std::move(c));
    }
    // False once the reader has given up: the writer should stop.
    bool push(Chunk chunk) {
        std::unique_lock lock(m_);
        room_.wait(lock, [&] { return chunks_.size() < kQueued || cancelled_; });
        if (cancelled_) return false;
        chunks_.push_back(std::move(chunk));
        ready_.notify_one();
        return true;
    }
    // The next chunk; one of size 0 at the end. Rethrows what stopped the writer.
    Chunk pop() {
        std::unique_lock lock(m_);
        ready_.wait(lock, [&] { return !chunks_.empty() || closed_; });
        if (chunks_.empty()) {
            if (failure_) std::rethrow_exception(failure_);
            return {};
        }
        Chunk c = std::move(chunks_.front());
        chunks_.pop_front();
        room_.notify_one();
        return c;
    }
    void close(std::exception_ptr failure = nullptr) {
        std::lock_guard lock(m_);
        closed_ = true;
        failure_ = failure;
        ready_.notify_all();
    }
    void cancel() {
        std::lock_guard lock(m_);
        cancelled_ = true;
        room_.notify_all();
    }

private:
    std::mutex m_;
    std::condition_variable ready_, room_;
    std::deque<Chunk> chunks_;
    std::vector<Chunk> spare_;
    bool closed_ = false, cancelled_ = false;
    std::exception_ptr failure_;
};

// The network side, on its own thread: HTTP body -> digests -> decompression -> queue.
// Decompressing and hashing take about as long as creating the files, and a pull has two
// CPUs to do them on. An exception never unwinds through libarchive's C frames: the read
// callback parks it and returns ARCHIVE_FATAL, and it is rethrown here instead of
// libarchive's "truncated input", so the user sees the root cause.
struct Download {
    Download(HttpBody& b, const LayerExpectation& e, const std::function<void(std::uint64_t)>& cb, ChunkQueue& q)
        : body(b), expect(e), on_bytes(cb), queue(q) {}
    HttpBody& body;
    const LayerExpectation& expect;
    const std::function<void(std::uint64_t)>& on_bytes;
    ChunkQueue& queue;
    Digester sent{Digester::Algorithm::sha256};
    std::optional<Digester> sent512;
    Digester tar{Digester::Algorithm::sha256};
    std::uint64_t sent_bytes = 0;
    std::exception_ptr failure;
    std::unique_ptr<char[]> in = std::make_unique<char[]>(kChunk);

    std::size_t pull_sent() {
        const std::size_t n = body.read(in.get(), kChunk);
        sent.update(in.get(), n);
        if (sent512) sent512->update(in.get(), n);
        sent_bytes += n;
        if (n) on_bytes(sent_bytes);
        return n;
    }

    static la_ssize_t read_sent(archive*, void* self, const void** buf) {
        auto* d = static_cast<Download*>(self);
        try {
            *buf = d->in.get();
            return static_cast<la_ssize_t>(d->pull_sent());
        } catch (...) {
            d->failure = std::current_exception();
            return ARCHIVE_FATAL;
        }
    }

    [[noreturn]] void fail(archive* a) {
        if (failure) std::rethrow_exception(failure);
        throw Error("cannot read " + expect.what + ": " + message(a));
    }

    void run() {
        // Only the compression the media type names is accepted: a "tar+gzip" layer that is
        // really xz is as wrong as a bad digest.
        ArchiveReader raw(archive_read_new());
        if (expect.compression == LayerCompression::gzip) archive_read_support_filter_gzip(raw.get());
        if (expect.compression == LayerCompression::zstd) archive_read_support_filter_zstd(raw.get());
        archive_read_support_format_raw(raw.get());
        if (archive_read_open2(raw.get(), this, nullptr, &Download::read_sent, nullptr, nullptr) != ARCHIVE_OK) fail(raw.get());
        archive_entry* entry = nullptr;
        if (archive_read_next_header(raw.get(), &entry) != ARCHIVE_OK) fail(raw.get());
        if (expect.compression != LayerCompression::none && archive_filter_count(raw.get()) < 2)
            throw Error(expect.what + " is not " + (expect.compression == LayerCompression::gzip ? "gzip" : "zstd") +
                        "-compressed as its media type says");
        Chunk chunk = queue.empty_chunk();
        for (;;) {
            const void* block;
            std::size_t n;
            la_int64_t offset;
            const int r = archive_read_data_block(raw.get(), &block, &n, &offset);
            if (r == ARCHIVE_EOF) break;
            if (r < ARCHIVE_WARN) fail(raw.get());
            if (!expect.diff_id.empty()) tar.update(block, n);  // no diff_id, no need
            for (auto* p = static_cast<const char*>(block); n > 0;) {
                const std::size_t take = std::min(n, kChunk - chunk.size);
                std::memcpy(chunk.data.get() + chunk.size, p, take);
                chunk.size += take;
                p += take;
                n -= take;
                if (chunk.size == kChunk) {
                    if (!queue.push(std::move(chunk))) return;
                    chunk = queue.empty_chunk();
                }
            }
        }
        if (chunk.size > 0 && !queue.push(std::move(chunk))) return;
        // The digest covers every byte sent, trailing data after the compressed stream too.
        while (pull_sent() > 0) {}
    }
};

// The file side: libarchive's tar reader fed from the queue.
struct TarSource {
    explicit TarSource(ChunkQueue& q) : queue(q) {}
    ChunkQueue& queue;
    Chunk current;  // libarchive reads from it until the next callback
    std::exception_ptr failure;

    static la_ssize_t read(archive*, void* self, const void** buf) {
        auto* s = static_cast<TarSource*>(self);
        try {
            s->queue.recycle(std::move(s->current));
            s->current = s->queue.pop();
        } catch (...) {
            s->failure = std::current_exception();
            return ARCHIVE_FATAL;
        }
        *buf = s->current.data.get();
        return static_cast<la_ssize_t>(s->current.size);
    }
};

}  // namespace

LayerResult apply_streamed_layer(HttpBody& body, int root_fd, const LayerExpectation& expect,
                                 const std::function<void(std::uint64_t)>& on_bytes) {
    ChunkQueue queue;
    Download download(body, expect, on_bytes, queue);
    if (expect.sha512) download.sent512.emplace(Digester::Algorithm::sha512);
    std::thread network([&] {
        ::prctl(PR_SET_NAME, "srlaunch-fetch");  // tells the two apart in top and perf
        try {
            download.run();
            queue.close();
        } catch (...) {
            queue.close(std::current_exception());
        }
    });
    // Whatever happens on this side, the network thread is stopped and joined first.
    struct Joiner {
        ChunkQueue& q;
        std::thread& t;
        ~Joiner() {
            q.cancel();
            if (t.joinable()) t.join();
        }
    } joiner{queue, network};

    TarSource source(queue);
    ArchiveReader tar(archive_read_new());
    archive_read_support_format_tar(tar.get());
    LayerResult result;
    try {
        if (archive_read_open2(tar.get(), &source, nullptr, &TarSource::read, nullptr, nullptr) != ARCHIVE_OK)
            throw Error("cannot read " + expect.what + ": " + message(tar.get()));
        result.unpacked = apply_layer(tar.get(), root_fd);
        // The tar ends at its end-of-archive blocks; the padding after them counts for the
        // diff_id too, so the whole stream is consumed.
        while (queue.pop().size > 0) {}
    } catch (const Error&) {
        if (source.failure) std::rethrow_exception(source.failure);
        throw;
    }
    network.join();  // it has closed the queue, so it is done

    result.digest = download.sent.digest();
    result.size = download.sent_bytes;
    if (download.sent512) result.sha512_hex = download.sent512->hex();
    if (expect.size && *expect.size != result.size)
        throw Error(expect.what + ": received " + std::to_string(result.size) + " bytes, expected " + std::to_string(*expect.size));
    if (!expect.digest.empty() && expect.digest != result.digest)
        throw Error(expect.what + ": content digest is " + result.digest + ", expected " + expect.digest);
    if (!expect.diff_id.empty()) {
        const std::string diff_id = download.tar.digest();
        if (diff_id != expect.diff_id)
            throw Error(expect.what + ": uncompressed digest is " + diff_id + ", the image config says " + expect.diff_id);
    }
    return result;
}

}  // namespace srl
