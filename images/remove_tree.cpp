// remove_tree_at(): a depth-first removal through directory fds, without recursion and without
// paths. One directory is open at a time: going back up opens ".." and checks that it is the
// directory we came down from (st_dev, st_ino), so neither the depth of the tree nor the fd limit
// bounds what can be removed, and a tree moved meanwhile stops the removal instead of leading it
// elsewhere. No symlink is followed (O_NOFOLLOW on every open) and no mount point is entered: a
// file system mounted in the tree (a leftover overlay, say) is refused, not emptied.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "images/extract.hpp"
#include "launcher/error.hpp"

namespace srl {
namespace {

// unlink() of a directory fails with EISDIR on Linux, EPERM as POSIX has it; EPERM may also be
// an immutable file, which stays an error. Keeps errno for the caller's message.
bool is_directory_error(int dirfd, const std::string& name) {
    const int err = errno;
    struct stat st;
    const bool dir = err == EISDIR || (err == EPERM && ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode));
    errno = err;
    return dir;
}

class TreeRemover {
public:
    TreeRemover(int top_fd, const std::string& shown) : top_(top_fd), shown_(shown) {
        struct stat st;
        check(::fstat(top_fd, &st), "cannot remove " + shown);
        top_dev_ = st.st_dev;
    }

    void run(const std::string& name) {
        if (!enter(name)) return;
        while (!levels_.empty()) {
            Level& l = levels_.back();
            if (l.names.empty()) {
                leave();
                continue;
            }
            const std::string child = std::move(l.names.back());
            l.names.pop_back();
            if (::unlinkat(cur_.get(), child.c_str(), 0) == 0 || errno == ENOENT) continue;
            if (!is_directory_error(cur_.get(), child)) throw_errno("cannot remove " + where(&child));
            enter(child);
        }
    }

private:
    struct Level {
        std::string name;                // in the directory above
        std::vector<std::string> names;  // entries still to remove
        dev_t dev;
        ino_t ino;
    };

    int dir_fd() const { return levels_.empty() ? top_ : cur_.get(); }
    dev_t dir_dev() const { return levels_.empty() ? top_dev_ : levels_.back().dev; }

    // The path shown in messages: built only for them, as it is as long as the tree is deep.
    std::string where(const std::string* child = nullptr) const {
        std::string s = shown_;
        for (std::size_t i = 1; i < levels_.size(); ++i) s += "/" + levels_[i].name;
        return child ? s + "/" + *child : s;
    }

    // Opens directory `name` in the current one and reads its entries. False if it is gone.
    bool enter(const std::string& name) {
        const int parent = dir_fd();
        const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        int fd = ::openat(parent, name.c_str(), flags);
        if (fd < 0 && errno == EACCES) {
            // A directory of mode 0 (or 0500) in an image unpacked without root.
            if (::fchmodat(parent, name.c_str(), 0700, AT_SYMLINK_NOFOLLOW) == 0)
                fd = ::openat(parent, name.c_str(), flags);
            else
                errno = EACCES;
        }
        // O_NOFOLLOW: should a symlink have taken the directory's place meanwhile, the open
        // fails instead of leading the removal elsewhere.
        if (fd < 0 && errno == ENOENT) return false;
        // Messages are built only on error: a path is as long as the tree is deep.
        const std::string* child = levels_.empty() ? nullptr : &name;
        Fd dir(fd);
        struct stat st;
        if (!dir || ::fstat(dir.get(), &st) < 0) throw_errno("cannot remove " + where(child));
        if (st.st_dev != dir_dev()) throw Error("cannot remove " + where(child) + ": a file system is mounted there");
        std::vector<std::string> names;
        try {
            names = list_directory(dir.get(), "");
        } catch (const Error& e) {
            throw Error("cannot read directory " + where(child), e.code());
        }
        levels_.push_back({name, std::move(names), st.st_dev, st.st_ino});
        cur_ = std::move(dir);
        return true;
    }

    // The current directory is empty: back up to its parent and remove it there.
    void leave() {
        const std::string name = std::move(levels_.back().name);
        if (levels_.size() == 1) {
            levels_.pop_back();
            cur_.reset();
        } else {
            const Level& above = levels_[levels_.size() - 2];
            Fd up(::openat(cur_.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            struct stat st;
            if (!up || ::fstat(up.get(), &st) < 0) throw_errno("cannot remove " + where());
            if (st.st_dev != above.dev || st.st_ino != above.ino)
                throw Error("cannot remove " + where() + ": it was moved while it was being removed");
            levels_.pop_back();
            cur_ = std::move(up);
        }
        if (::unlinkat(dir_fd(), name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
            throw_errno("cannot remove " + where(levels_.empty() ? nullptr : &name));
    }

    int top_;
    dev_t top_dev_;
    std::string shown_;
    std::vector<Level> levels_;  // levels_[0] is the tree's top, `shown_`
    Fd cur_;                     // levels_.back()'s directory
};

}  // namespace

void remove_tree_at(int dirfd, const std::string& name, const std::string& shown) {
    if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;
    if (!is_directory_error(dirfd, name)) throw_errno("cannot remove " + shown);
    TreeRemover(dirfd, shown).run(name);
}

}  // namespace srl
