// User-namespace ID mappings: parsing (`CTR:HOST:COUNT`, as podman's --uidmap), validation,
// writing /proc/PID/{uid,gid}_map, and `--userns auto` ranges that never overlap.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace srl {

struct IdMapping {
    uint32_t container = 0, host = 0, count = 0;
    bool operator==(const IdMapping&) const = default;
};

IdMapping parse_id_mapping(const std::string& text);  // throws Error on bad input
// Refuses empty counts, ranges that wrap, and overlaps on either side (the kernel refuses
// them too, but with a bare EINVAL at write time).
void validate_id_mappings(const std::vector<IdMapping>& maps, const char* which);
// The host id a container id maps to, if it is mapped.
std::optional<uint32_t> map_to_host(const std::vector<IdMapping>& maps, uint32_t id);
std::string format_id_map(const std::vector<IdMapping>& maps);  // the kernel's map file text

// Writes the maps of the process `pid` (in its new user namespace, not yet using them).
void write_id_maps(pid_t pid, const std::vector<IdMapping>& uids, const std::vector<IdMapping>& gids);

// `--userns auto`: 65536-id ranges handed out under <state>/userns, one file per range, named
// by its first host id and holding the owning container's id; taken under a lock.
class UsernsRanges {
public:
    static constexpr uint32_t kSize = 65536;
    static constexpr uint32_t kFirst = 1u << 20;   // clear of the 100000-range subuid habits
    static constexpr uint32_t kLimit = 1u << 31;
    explicit UsernsRanges(std::filesystem::path dir) : dir_(std::move(dir)) {}
    uint32_t allocate(const std::string& container_id);
    void release(const std::string& container_id);

private:
    std::filesystem::path dir_;
};

}  // namespace srl
