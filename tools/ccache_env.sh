# Sourced by tools/setup.sh and tools/cpp_tests.sh: compile through ccache when it is installed.
# CI compiles the kernels at -O3 twice with the same command line (the pip build in setup, then
# the Release build of the C++ tests), and the heavy depthwise files take minutes each, so the
# second build is served from the cache. The cache lives in the checkout (build/ccache), so a
# fresh clone starts empty and CI's timing does not depend on an earlier run.
if command -v ccache >/dev/null 2>&1; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
  export CCACHE_DIR="${CCACHE_DIR:-$PWD/build/ccache}"
  # One compiler name for both builds: ccache tells /usr/bin/c++ (CMake's pick) from
  # /usr/bin/g++ (scikit-build-core's, from Python's sysconfig) even though they are one binary.
  export CXX="${CXX:-g++}"
fi
