#include "launcher/fd_passing.hpp"

#include <sys/socket.h>

#include <cstring>
#include <string>

#include "launcher/error.hpp"

namespace srl {

namespace {

// The "go" message: one byte of payload and room for one fd as SCM_RIGHTS, laid out the
// same way by both ends. Not copyable: the header points into the object itself.
struct FdMessage {
    char byte = 'g';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    FdMessage() {
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
    }
    FdMessage(const FdMessage&) = delete;
    FdMessage& operator=(const FdMessage&) = delete;
};

}  // namespace

// fd < 0: the "go" byte alone (rootless: the child mounts its root itself).
void send_fd(int sock, int fd) {
    FdMessage m;
    if (fd < 0) {
        m.msg.msg_control = nullptr;
        m.msg.msg_controllen = 0;
        check(sendmsg(sock, &m.msg, MSG_NOSIGNAL), "start the container");
        return;
    }
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    check(sendmsg(sock, &m.msg, MSG_NOSIGNAL), "hand the root filesystem to the container");
}

Fd receive_fd(int sock) {
    FdMessage m;
    if (recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC) <= 0) throw Error("the launcher went away before the container started");
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    if (!c) return Fd();  // rootless: none sent
    if (c->cmsg_type != SCM_RIGHTS) throw Error("no root filesystem received");
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return Fd(fd);
}

Fd wait_for_exec(int sock) {
    Fd console;
    for (;;) {
        char buf[1024];
        iovec iov{buf, sizeof buf};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return console;
        if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
            console = Fd(fd);
            continue;
        }
        throw Error(std::string(buf, static_cast<size_t>(n)));
    }
}


}  // namespace srl
