// A measurement aid for benchmarks, not a kernel: the memory-traffic floor of a layer. A layer
// that reads its input once and writes its output once cannot run faster than one streaming
// pass over the same bytes from the same cache state; benchmarks time this pass beside the
// layer so a large layer's time can be read against the memory system rather than a guess.
// Normal stores, as the kernels use: non-temporal stores beat both on a layer alone but leave the
// output out of L2 for the next layer (measured: depthwise + 1x1 1.15-1.46x slower), so they are
// a floor of nothing a network would run.
#pragma once
#include <cstdint>

namespace mk {

// Reads in[0, in_n) once and writes out[0, out_n) once, in step: output block b (16 floats)
// is the sum of the input slice proportional to it, as a convolution produces output rows
// while it walks its input rows. `threads` OpenMP threads take equal runs of blocks.
// in_n, out_n >= 16.
void stream_probe(const float* in, int64_t in_n, float* out, int64_t out_n, int threads);

}  // namespace mk
