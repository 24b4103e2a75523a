// -t: the container's own pty, driven from a pty the test holds as the user's terminal.
#include <catch2/catch.hpp>
#include <thread>

#include "../support/alpine_store.hpp"
#include "../support/proc.hpp"

using namespace test;

TEST_CASE("run -it: prompt, window size and resizes, Ctrl-C, exit status, terminal restored", "[terminal]") {
    AlpineStore s;
    SpawnOptions o;
    o.pty = true;
    Child c(s.alpine_argv({"-it"}, {"sh"}), o);
    c.resize(30, 100);
    std::string before = c.tty_settings();
    bool prompt = c.read_until("/ # ", 60s);
    INFO(c.out());
    REQUIRE(prompt);
    // While attached the caller's terminal is raw: no echo, no signals of its own.
    CHECK(c.tty_settings() != before);
    c.write("stty size\r");
    CHECK(c.read_until("30 100"));
    c.resize(40, 120);
    std::this_thread::sleep_for(200ms);
    c.clear_output();
    c.write("stty size\r");
    CHECK(c.read_until("40 120"));
    c.write("tty; ls -l /dev/console | cut -c1\r");
    CHECK(c.read_until("/dev/pts/0"));
    CHECK(c.read_until("\nc"));
    // Ctrl-C ends the foreground sleep, not the shell (nor srlaunch).
    c.write("sleep 30\r");
    std::this_thread::sleep_for(300ms);
    c.clear_output();
    auto start = Clock::now();
    c.write("\x03");
    c.write("echo still-$((40+2))\r");
    CHECK(c.read_until("still-42"));
    CHECK(Clock::now() - start < 10s);
    c.write("exit 3\r");
    CHECK(c.wait() == 3);
    CHECK(c.tty_settings() == before);
}

TEST_CASE("run -it refuses a stdin that is not a terminal", "[terminal]") {
    AlpineStore s;
    auto r = s.in_alpine({"-it"}, {"true"});
    CHECK(r.status == 125);
    CHECK(r.err == "srlaunch: the input device is not a TTY (-it)\n");
    // -t alone is fine: the container gets a terminal of its own.
    auto t = s.in_alpine({"-t"}, {"tty"});
    CHECK(t.status == 0);
    CHECK(t.out == "/dev/pts/0\r\n");
}

TEST_CASE("run -dit, attach, Ctrl-P Ctrl-Q detaches, attach again, exit status", "[terminal]") {
    AlpineStore s;
    auto started = s.srl({"run", "-dit", "--name", "shell", "alpine:3.20", "sh"});
    REQUIRE(started.status == 0);
    SpawnOptions o;
    o.pty = true;
    {
        Child a(s.argv({"attach", "shell"}), o);
        std::this_thread::sleep_for(300ms);
        a.write("echo one-$((1+1))\r");
        CHECK(a.read_until("one-2"));
        a.write("\x10\x11");
        CHECK(a.wait() == 0);
    }
    CHECK(s.srl({"ps"}).out.find("running") != std::string::npos);
    {
        Child a(s.argv({"attach", "shell"}), o);
        a.resize(33, 90);
        std::this_thread::sleep_for(300ms);
        a.write("stty size; exit 4\r");
        CHECK(a.read_until("33 90"));
        CHECK(a.wait() == 4);
    }
    // Its output, typed echo included, is in its log.
    CHECK(s.srl({"logs", "shell"}).out.find("one-2") != std::string::npos);
    CHECK(s.srl({"rm", "shell"}).status == 0);
}
