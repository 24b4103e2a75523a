#include "fetch/progress.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace srl {

std::string human_bytes(std::uint64_t n) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

Progress::Mode Progress::mode_for(bool quiet) {
    if (quiet) return Mode::quiet;
    const char* term = std::getenv("TERM");
    if (::isatty(STDERR_FILENO) && !(term && std::strcmp(term, "dumb") == 0)) return Mode::terminal;
    return Mode::lines;
}

std::size_t Progress::start(std::string label, std::optional<std::uint64_t> total) {
    tasks_.push_back({std::move(label), total, 0, Clock::now(), ""});
    if (mode_ == Mode::lines)
        std::fprintf(out_, "%s: downloading%s\n", tasks_.back().label.c_str(),
                     total ? (" (" + human_bytes(*total) + ")").c_str() : "");
    redraw(true);
    return tasks_.size() - 1;
}

void Progress::advance(std::size_t id, std::uint64_t bytes, std::optional<std::uint64_t> total) {
    tasks_[id].bytes = bytes;
    if (total) tasks_[id].total = total;
    redraw(false);
}

void Progress::finish(std::size_t id, const std::string& outcome) {
    Task& t = tasks_[id];
    t.outcome = outcome;
    if (mode_ == Mode::lines) {
        const double secs = std::chrono::duration<double>(Clock::now() - t.started).count();
        std::fprintf(out_, "%s: %s (%s in %.1f s)\n", t.label.c_str(), outcome.c_str(), human_bytes(t.bytes).c_str(), secs);
    }
    redraw(true);
}

void Progress::note(const std::string& line) {
    if (mode_ == Mode::quiet) return;
    if (mode_ == Mode::terminal && drawn_ > 0) {
        // Notes go above the live lines: clear those, print, draw them again below.
        std::fprintf(out_, "\x1b[%zuA\x1b[J", drawn_);
        drawn_ = 0;
    }
    std::fprintf(out_, "%s\n", line.c_str());
    redraw(true);
}

std::string Progress::render(const Task& t) const {
    std::string s = t.label + "  ";
    if (!t.outcome.empty()) return s + t.outcome + " (" + human_bytes(t.bytes) + ")";
    s += human_bytes(t.bytes);
    if (t.total) s += " / " + human_bytes(*t.total);
    const double secs = std::chrono::duration<double>(Clock::now() - t.started).count();
    if (secs > 0.2 && t.bytes > 0) {
        const double rate = t.bytes / secs;
        s += "  " + human_bytes(static_cast<std::uint64_t>(rate)) + "/s";
        if (t.total && *t.total > t.bytes) {
            char eta[32];
            std::snprintf(eta, sizeof eta, "  ETA %.0f s", (*t.total - t.bytes) / rate);
            s += eta;
        }
    }
    return s;
}

void Progress::redraw(bool force) {
    if (mode_ != Mode::terminal) return;
    const auto now = Clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    if (drawn_ > 0) std::fprintf(out_, "\x1b[%zuA", drawn_);
    for (const Task& t : tasks_) std::fprintf(out_, "\r\x1b[K%s\n", render(t).c_str());
    drawn_ = tasks_.size();
    std::fflush(out_);
}

}  // namespace srl
