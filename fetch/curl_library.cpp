#include "fetch/curl_library.hpp"

#include <dlfcn.h>

#include <mutex>
#include <string>

#include "launcher/error.hpp"

namespace srl {
namespace {

template <class F>
void bind(void* lib, F& fn, const char* name) {
    void* sym = ::dlsym(lib, name);
    if (!sym) throw Error(std::string("libcurl.so.4 lacks ") + name + " (libcurl 7.66 or newer is needed)");
    fn = reinterpret_cast<F>(sym);
}

CurlLibrary load() {
    // RTLD_LOCAL: libcurl's own OpenSSL stays apart from the libcrypto linked into srlaunch.
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* why = ::dlerror();
        throw Error(std::string("cannot load libcurl (install Debian's libcurl4): ") + (why ? why : "dlopen failed"));
    }
    CurlLibrary c{};
    bind(lib, c.global_init, "curl_global_init");
    bind(lib, c.easy_init, "curl_easy_init");
    bind(lib, c.easy_setopt, "curl_easy_setopt");
    bind(lib, c.easy_getinfo, "curl_easy_getinfo");
    bind(lib, c.easy_cleanup, "curl_easy_cleanup");
    bind(lib, c.easy_strerror, "curl_easy_strerror");
    bind(lib, c.slist_append, "curl_slist_append");
    bind(lib, c.slist_free_all, "curl_slist_free_all");
    bind(lib, c.multi_init, "curl_multi_init");
    bind(lib, c.multi_add_handle, "curl_multi_add_handle");
    bind(lib, c.multi_remove_handle, "curl_multi_remove_handle");
    bind(lib, c.multi_perform, "curl_multi_perform");
    bind(lib, c.multi_poll, "curl_multi_poll");
    bind(lib, c.multi_info_read, "curl_multi_info_read");
    bind(lib, c.multi_cleanup, "curl_multi_cleanup");
    if (c.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw Error("cannot initialise libcurl");
    // The handle is never closed: libcurl keeps global state (OpenSSL) until exit.
    return c;
}

}  // namespace

const CurlLibrary& CurlLibrary::get() {
    static std::once_flag once;
    static CurlLibrary lib;
    std::call_once(once, [] { lib = load(); });
    return lib;
}

}  // namespace srl
