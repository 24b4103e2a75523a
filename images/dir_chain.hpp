// The directory an extraction is writing in, held open together with the way down to it, so
// that the next entry's directory is reached from where the last one's ended.
//
// Resolving every entry's parent from the root costs one lookup per component: quadratic in
// the depth for a deep tree, and impossible in one call past PATH_MAX (4096 bytes). A tar lists
// a tree depth first, so consecutive entries share all but their last component or two; moving
// the chain costs one step per component that differs, however deep the tree is.
//
// Down, each step is an openat() of one name relative to the directory above, with O_NOFOLLOW:
// never through a symlink, and the names come from split_beneath(), so never "..". Up, a step
// opens ".." of the current directory and checks that it is the very directory (st_dev, st_ino)
// the chain came down through; so only one fd is open however deep the chain is, and a tree
// moved from under us is an error rather than a write somewhere else.
//
// Every directory the chain has been in is a node (0 is the root), identified by its parent and
// its name, so a directory recorded earlier (a deferred mode) can be gone back to.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "launcher/fd.hpp"

namespace srl {

class DirChain {
public:
    using Node = std::uint32_t;
    static constexpr Node kRoot = 0;

    explicit DirChain(int root_fd);  // root_fd must stay open while the chain is used

    int fd() const { return cur_ ? cur_.get() : root_; }  // the current directory
    std::size_t depth() const { return levels_.size(); }
    Node node() const { return levels_.empty() ? kRoot : levels_.back().node; }
    Node parent(Node n) const { return nodes_[n].parent; }
    const std::string& name(Node n) const { return nodes_[n].name; }
    // The node for `name` in directory `parent`, made on first use.
    Node child(Node parent, std::string_view name);
    // The node's path, for messages.
    std::string path(Node n) const;

    // How many of parts[0..n) the chain holds now.
    std::size_t common(const std::vector<std::string>& parts, std::size_t n) const;
    // Goes up until the chain is `n` deep.
    void up_to(std::size_t n);
    // Goes one level down to `name` in the current directory; 0, or the errno of openat().
    int down(const std::string& name);
    // One level down through `dir`, an fd the caller opened on `name` in the current directory.
    void push(const std::string& name, Fd dir);
    // Moves to the directory `target` stands for. False (the chain stopping above) when a
    // directory on the way is missing, is not a directory or is a symlink.
    bool go_to(Node target);
    // Back at the root, holding nothing below it: after a directory was removed, whatever was
    // beneath it may be gone.
    void reset();

private:
    struct NodeInfo {
        Node parent;
        std::uint32_t depth;
        std::string name;
    };
    struct Level {
        Node node;
        dev_t dev;
        ino_t ino;
    };
    void up();
    static std::string key(Node parent, std::string_view name);

    int root_;
    std::vector<NodeInfo> nodes_;
    std::unordered_map<std::string, Node> children_;  // key(parent, name) -> node
    std::vector<Level> levels_;  // the way down: levels_[i] is i + 1 deep
    Fd cur_;                     // levels_.back()'s directory; empty at the root
};

}  // namespace srl
