// Owners for libarchive handles, so every exit path frees them exactly once.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>

namespace srl {

struct ArchiveReadFree {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteFree {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};
struct LinkResolverFree {
    void operator()(archive_entry_linkresolver* r) const { archive_entry_linkresolver_free(r); }
};

// Both archive_read_new() and archive_read_disk_new() handles are freed by archive_read_free().
using ArchiveReader = std::unique_ptr<archive, ArchiveReadFree>;
using ArchiveWriter = std::unique_ptr<archive, ArchiveWriteFree>;
using ArchiveEntry = std::unique_ptr<archive_entry, ArchiveEntryFree>;
using LinkResolver = std::unique_ptr<archive_entry_linkresolver, LinkResolverFree>;

}  // namespace srl
