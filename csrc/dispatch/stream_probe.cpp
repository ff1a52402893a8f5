#include "dispatch/stream_probe.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace mk {
namespace {

// 16 floats as one GCC vector: AVX-512 / AVX2 / SSE2 or NEON registers, whichever the clone runs.
typedef float V16 __attribute__((vector_size(64)));

// x86: one clone per vector width, picked at load time, so the pass is bound by memory (or by
// the cache's bandwidth), not by 16-byte loads. aarch64: NEON is the baseline.
#if defined(__x86_64__)
#define MK_STREAM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MK_STREAM_CLONES
#endif

MK_STREAM_CLONES
void stream_blocks(const float* in, int64_t in_n, float* out, int64_t out_n, int64_t b0, int64_t b1) {
  const int64_t blocks = out_n / 16;
  if (out_n % 16 == 0 && in_n % out_n == 0) {
    // Every layer shape of the benchmarks (channels a multiple of 16, stride 1 or 2 on even
    // sizes): block b sums r whole input vectors, the same numbers as the general loop below,
    // in a loop tight enough to reach the cache's bandwidth.
    const int64_t r = in_n / out_n;
    for (int64_t b = b0; b < b1; ++b) {
      const float* src = in + b * 16 * r;
      V16 acc;
      std::memcpy(&acc, src, sizeof acc);
      for (int64_t k = 1; k < r; ++k) {
        V16 v;
        std::memcpy(&v, src + 16 * k, sizeof v);
        acc += v;
      }
      std::memcpy(out + b * 16, &acc, sizeof acc);
    }
    return;
  }
  // Block b reads q input floats, one more for the first `rem` blocks: no division per block
  // (two 64-bit divisions per 64-byte block cost more than the memory traffic).
  const int64_t q = in_n / blocks, rem = in_n % blocks;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * q + std::min(b, rem), i1 = i0 + q + (b < rem ? 1 : 0);
    V16 acc = {};
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
      V16 v;
      std::memcpy(&v, in + i, sizeof v);
      acc += v;
    }
    if (i == i1 && b + 1 < blocks) {  // the common case (a whole number of vectors): no lane copy
      std::memcpy(out + b * 16, &acc, sizeof acc);
      continue;
    }
    float lane[16];
    std::memcpy(lane, &acc, sizeof lane);
    for (; i < i1; ++i) lane[(i - i0) & 15] += in[i];
    if (b + 1 < blocks) {
      std::memcpy(out + b * 16, lane, sizeof lane);
    } else {  // the last block also writes the tail of < 16 floats
      for (int64_t o = b * 16; o < out_n; ++o) out[o] = lane[o & 15];
    }
  }
}

}  // namespace

void stream_probe(const float* in, int64_t in_n, float* out, int64_t out_n, int threads) {
  if (in_n < 16 || out_n < 16) throw std::invalid_argument("stream_probe: sizes must be >= 16 floats");
  if (threads < 1 || threads > 1024) throw std::invalid_argument("stream_probe: threads must be in 1..1024");
  const int64_t blocks = out_n / 16;
  if (threads == 1) return stream_blocks(in, in_n, out, out_n, 0, blocks);
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    stream_blocks(in, in_n, out, out_n, blocks * t / nt, blocks * (t + 1) / nt);
  }
}

}  // namespace mk
