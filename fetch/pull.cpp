#include "fetch/pull.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <set>
#include <utility>

#include "fetch/remote_ref.hpp"
#include "launcher/fd.hpp"

namespace srl {

ImageRef local_name(const std::string& reference) {
    if (is_alpine_mirror_ref(reference)) return ImageRef::parse(reference);
    return RemoteRef::parse(reference).local();
}

Image pull_image(ImageStore& store, const std::string& reference, const PullOptions& opts) {
    Progress progress(Progress::mode_for(opts.quiet));
    PullContext ctx{store, opts, HttpOptions{opts.tls_verify}, progress};
    try {
        return is_alpine_mirror_ref(reference) ? pull_from_alpine_mirror(ctx, reference)
                                               : pull_from_registry(ctx, reference);
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what.starts_with("cannot pull ") || what.starts_with("pull access denied")) throw;
        throw Error("cannot pull " + reference + ": " + what);
    }
}

namespace {

void add_tree(Fd dir_fd, std::set<std::pair<dev_t, ino_t>>& seen, std::uint64_t& total) {
    DIR* d = ::fdopendir(dir_fd.get());
    if (!d) return;
    dir_fd.release();  // the DIR owns it now
    std::unique_ptr<DIR, int (*)(DIR*)> owner(d, ::closedir);
    while (dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st;
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        if (S_ISREG(st.st_mode)) {
            if (st.st_nlink == 1 || seen.insert({st.st_dev, st.st_ino}).second) total += static_cast<std::uint64_t>(st.st_size);
        } else if (S_ISDIR(st.st_mode)) {
            Fd sub(::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (sub.get() >= 0) add_tree(std::move(sub), seen, total);
        }
    }
}

}  // namespace

std::uint64_t tree_size(int root_fd) {
    std::set<std::pair<dev_t, ino_t>> seen;
    std::uint64_t total = 0;
    Fd fd(::openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() >= 0) add_tree(std::move(fd), seen, total);
    return total;
}

}  // namespace srl
