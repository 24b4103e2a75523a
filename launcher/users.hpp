// `-u NAME|UID[:GROUP|GID]` resolved against the image's own /etc/passwd and /etc/group,
// as docker does: names must exist there, numbers need not.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace srl {

struct ResolvedUser {
    uint32_t uid = 0, gid = 0;
    std::vector<uint32_t> additional_gids;  // groups of /etc/group that list the user
    std::string home = "/";
};

// The files are read inside `rootfs` (symlinks resolve within it, never on the host).
ResolvedUser resolve_user(const std::filesystem::path& rootfs, const std::string& user);

}  // namespace srl
