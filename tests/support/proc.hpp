// Running real processes from tests: pipes or a pseudo-terminal, optionally as PID 1 of a
// fresh PID namespace (with its own /proc), with deadlines instead of hangs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct SpawnOptions {
    bool pid_namespace = false;   // run as PID 1 of a new PID + mount namespace, /proc remounted
    bool pty = false;             // stdin/stdout/stderr on a new pty that is the controlling tty
    bool merge_stderr = false;    // stderr into the stdout pipe
    std::vector<int> leak_fds;    // fds passed on without FD_CLOEXEC, at their own numbers
    std::vector<std::string> env; // extra KEY=VALUE entries
    std::string stdin_data;       // written to the child's stdin, which is then closed
};

// A running child. Destruction SIGKILLs and reaps it if the test did not wait for it.
class Child {
public:
    Child(const std::vector<std::string>& argv, const SpawnOptions& opts = {});
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    // Reads output until `needle` appears in it (true) or the deadline passes (false). The
    // default is generous: a loaded shared host can take many seconds to start a container.
    bool read_until(const std::string& needle, std::chrono::milliseconds timeout = 60s);
    // Writes to the child's stdin (or the pty).
    void write(const std::string& data);
    // Waits for exit; on timeout SIGKILLs and fails the test. Returns the status as a shell
    // reports it (128+N for signal N). Reads the remaining output meanwhile.
    int wait(std::chrono::milliseconds timeout = 30s);
    const std::string& out() const { return out_; }
    // With pty: sets the terminal's size (the kernel signals SIGWINCH to its foreground job).
    void resize(unsigned short rows, unsigned short cols);
    // With pty: the terminal's settings (termios, as raw bytes), to compare before and after.
    std::string tty_settings();
    // Forgets the output read so far, so read_until looks only at what comes next.
    void clear_output() { out_.clear(); }
    const std::string& err() const { return err_; }

private:
    void pump(int timeout_ms);
    pid_t pid_ = -1;
    int out_fd_ = -1;   // stdout pipe or pty master
    int err_fd_ = -1;
    int in_fd_ = -1;
    int slave_fd_ = -1;  // with pty: held once tty_settings() was called
    std::string out_, err_;
    bool reaped_ = false;
};

struct Result {
    int status;
    std::string out, err;
};

// Runs a command to completion.
Result run(const std::vector<std::string>& argv, const SpawnOptions& opts = {},
           std::chrono::milliseconds timeout = 60s);

// The `srinit` built alongside these tests, and the helper programs.
std::string srinit_path();
std::string helper_path(const std::string& name);

// A fresh temporary directory, removed recursively with its owner.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// Tests that need root (namespaces, mounts) call this first. Without root the test is
// reported as skipped (exit code 77, which ctest counts as "Not Run"), except under CI=true,
// where a missing prerequisite is a failure.
void require_root();
// The same for a program the test needs on PATH.
void require_program(const std::string& name);
// The same for anything else the test needs of the machine (`what` names it).
void require(bool present, const std::string& what);

// Lines of /proc/PID/stat fields: state letter of a pid, or '\0' if it is gone.
char process_state(pid_t pid);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content, mode_t mode = 0644);

}  // namespace test
