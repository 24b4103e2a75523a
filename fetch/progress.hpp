// What a pull tells the user while it runs, on stderr (stdout is left to the container
// of a `run` that pulled first). On a terminal: one line per download with bytes, total,
// rate and ETA, redrawn in place. Otherwise: one plain line per event. Quiet: nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace srl {

class Progress {
public:
    enum class Mode { quiet, lines, terminal };
    // terminal when stderr is a terminal (and TERM is not "dumb"), lines otherwise.
    static Mode mode_for(bool quiet);
    explicit Progress(Mode mode, std::FILE* out = stderr) : mode_(mode), out_(out) {}

    // A new download; returns its id.
    std::size_t start(std::string label, std::optional<std::uint64_t> total);
    void advance(std::size_t id, std::uint64_t bytes_so_far, std::optional<std::uint64_t> total);
    void finish(std::size_t id, const std::string& outcome);  // "done", "verified", ...
    // A one-line event ("resolved docker.io/library/debian:bookworm to sha256:...").
    void note(const std::string& line);

private:
    using Clock = std::chrono::steady_clock;
    struct Task {
        std::string label;
        std::optional<std::uint64_t> total;
        std::uint64_t bytes = 0;
        Clock::time_point started;
        std::string outcome;
    };
    std::string render(const Task& t) const;
    void redraw(bool force);

    Mode mode_;
    std::FILE* out_;
    std::vector<Task> tasks_;
    std::size_t drawn_ = 0;  // task lines currently on the screen below the notes
    Clock::time_point last_draw_{};
};

std::string human_bytes(std::uint64_t n);  // "3.3 MiB"

}  // namespace srl
