# Builds C++20 into fully static musl binaries with Debian's g++ and musl-tools.
#
# g++ compiles against musl's headers (not glibc's) plus the header-only parts of libstdc++
# (array, span, string_view, optional...). Linking goes through musl-gcc, whose specs file
# swaps in musl's crt files and libc; libstdc++ and libsupc++ are never linked, so code must
# avoid exceptions, RTTI and anything that needs the C++ runtime library.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

find_program(MUSL_GCC NAMES x86_64-linux-musl-gcc musl-gcc REQUIRED)
set(MUSL_INCLUDE /usr/include/x86_64-linux-musl)
if(NOT EXISTS ${MUSL_INCLUDE}/stdlib.h)
  message(FATAL_ERROR "musl headers not found in ${MUSL_INCLUDE}: install musl-tools (toolchain/install-deps.sh)")
endif()

set(CMAKE_C_COMPILER ${MUSL_GCC})
set(CMAKE_CXX_COMPILER g++)
execute_process(COMMAND g++ -dumpversion OUTPUT_VARIABLE GXX_MAJOR OUTPUT_STRIP_TRAILING_WHITESPACE)
execute_process(COMMAND g++ -print-file-name=include OUTPUT_VARIABLE GCC_INCLUDE OUTPUT_STRIP_TRAILING_WHITESPACE)

# Order matters: libstdc++'s <cstdlib> and friends #include_next the C headers, which must
# then be musl's; gcc's own include dir (intrinsics) comes last.
set(CMAKE_CXX_FLAGS_INIT
  "-nostdinc -isystem /usr/include/c++/${GXX_MAJOR} -isystem /usr/include/x86_64-linux-gnu/c++/${GXX_MAJOR} \
-isystem ${MUSL_INCLUDE} -isystem ${GCC_INCLUDE} -include ${CMAKE_CURRENT_LIST_DIR}/musl-compat.h \
-fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-asynchronous-unwind-tables \
-ffunction-sections -fdata-sections -fno-stack-protector -fno-plt")
# No separate code segment padding, no build-id, no relro page: each saves a page of file.
set(CMAKE_EXE_LINKER_FLAGS_INIT
  "-static -Wl,--gc-sections -Wl,-z,noseparate-code -Wl,--build-id=none -Wl,-z,norelro -Wl,--hash-style=gnu -s")
set(CMAKE_CXX_LINK_EXECUTABLE
  "${MUSL_GCC} <FLAGS> <CMAKE_CXX_LINK_FLAGS> <LINK_FLAGS> <OBJECTS> -o <TARGET> <LINK_LIBRARIES>")
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
