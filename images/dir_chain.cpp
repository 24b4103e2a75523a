#include "images/dir_chain.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "launcher/error.hpp"

namespace srl {

DirChain::DirChain(int root_fd) : root_(root_fd) { nodes_.push_back({kRoot, 0, ""}); }

std::string DirChain::key(Node parent, std::string_view name) {
    std::string k(sizeof parent, '\0');
    std::memcpy(k.data(), &parent, sizeof parent);
    return k.append(name);
}

DirChain::Node DirChain::child(Node parent, std::string_view name) {
    auto [it, added] = children_.try_emplace(key(parent, name), static_cast<Node>(nodes_.size()));
    if (added) nodes_.push_back({parent, nodes_[parent].depth + 1, std::string(name)});
    return it->second;
}

std::string DirChain::path(Node n) const {
    std::vector<Node> way;
    for (; n != kRoot; n = nodes_[n].parent) way.push_back(n);
    std::string s;
    for (auto it = way.rbegin(); it != way.rend(); ++it) s += (s.empty() ? "" : "/") + nodes_[*it].name;
    return s.empty() ? "." : s;
}

std::size_t DirChain::common(const std::vector<std::string>& parts, std::size_t n) const {
    const std::size_t most = std::min(n, levels_.size());
    std::size_t k = 0;
    while (k < most && nodes_[levels_[k].node].name == parts[k]) ++k;
    return k;
}

void DirChain::reset() {
    levels_.clear();
    cur_.reset();
}

// ".." of a directory we came down into is the directory we came from, unless someone moved
// it meanwhile: then the identities differ and we stop rather than carry on elsewhere.
void DirChain::up() {
    if (levels_.size() == 1) return reset();  // the root's fd is the caller's
    const Level& above = levels_[levels_.size() - 2];
    // Messages are built only on error: a path is as long as the chain is deep.
    Fd dir(::openat(cur_.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct stat st;
    if (!dir || ::fstat(dir.get(), &st) < 0) throw_errno("cannot open directory " + path(above.node));
    if (st.st_dev != above.dev || st.st_ino != above.ino)
        throw Error("directory " + path(above.node) + " was moved while the image was being written");
    levels_.pop_back();
    cur_ = std::move(dir);
}

void DirChain::up_to(std::size_t n) {
    if (n == 0) return reset();
    while (levels_.size() > n) up();
}

int DirChain::down(const std::string& name) {
    const int dir = ::openat(fd(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) return errno;
    push(name, Fd(dir));
    return 0;
}

void DirChain::push(const std::string& name, Fd dir) {
    const Node n = child(node(), name);
    struct stat st;
    if (::fstat(dir.get(), &st) < 0) throw_errno("cannot open directory " + path(n));
    levels_.push_back({n, st.st_dev, st.st_ino});
    cur_ = std::move(dir);
}

bool DirChain::go_to(Node target) {
    // The target's ancestors below the deepest one the chain holds, deepest first.
    std::vector<Node> way;
    Node t = target;
    while (t != kRoot && (nodes_[t].depth > levels_.size() || levels_[nodes_[t].depth - 1].node != t)) {
        way.push_back(t);
        t = nodes_[t].parent;
    }
    up_to(nodes_[t].depth);
    for (auto it = way.rbegin(); it != way.rend(); ++it) {
        const int err = down(nodes_[*it].name);
        if (err == ENOENT || err == ENOTDIR || err == ELOOP) return false;
        if (err) throw Error("cannot open directory " + path(*it), err);
    }
    return true;
}

}  // namespace srl
