// libcurl, loaded on first use instead of linked.
//
// Debian ships no static libcurl whose dependencies (GSSAPI, LDAP) exist as static archives,
// and linking the shared one would make every `srlaunch run` load some thirty libraries at
// start-up, a few milliseconds each time, for a feature only `pull` uses. So `pull` pays:
// dlopen("libcurl.so.4") the first time a transfer starts. The types and constants still come
// from <curl/curl.h>, so every call is type-checked against the installed API.
#pragma once

#include <curl/curl.h>

namespace srl {

struct CurlLibrary {
    decltype(&curl_global_init) global_init;
    decltype(&curl_easy_init) easy_init;
    decltype(&curl_easy_setopt) easy_setopt;
    decltype(&curl_easy_getinfo) easy_getinfo;
    decltype(&curl_easy_cleanup) easy_cleanup;
    decltype(&curl_easy_strerror) easy_strerror;
    decltype(&curl_slist_append) slist_append;
    decltype(&curl_slist_free_all) slist_free_all;
    decltype(&curl_multi_init) multi_init;
    decltype(&curl_multi_add_handle) multi_add_handle;
    decltype(&curl_multi_remove_handle) multi_remove_handle;
    decltype(&curl_multi_perform) multi_perform;
    decltype(&curl_multi_poll) multi_poll;
    decltype(&curl_multi_info_read) multi_info_read;
    decltype(&curl_multi_cleanup) multi_cleanup;

    // Loads and initialises libcurl once per process; throws srl::Error naming the library
    // (and the Debian package that provides it) when it cannot be loaded.
    static const CurlLibrary& get();
};

}  // namespace srl
