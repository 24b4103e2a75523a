/* Forced into every srinit compile: libstdc++'s Debian config headers were written for
   glibc and test glibc versions; musl defines no __GLIBC_PREREQ, so answer "not glibc". */
#ifndef __GLIBC_PREREQ
#define __GLIBC_PREREQ(maj, min) 0
#endif
