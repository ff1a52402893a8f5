// A chain of fp32 layers run in one call: fused inverted residuals (with or without SE),
// 1x1 convolutions and depthwise convolutions, NHWC, for one input shape fixed when the chain is built.
//
// Built once (per input shape and set of weight packs), run many times:
//   * every step is validated when it is added, against the shape the previous step produces,
//     packs included (header checks), so a shape or pack mismatch is an error at build time;
//   * the intermediate activations live in two ping-pong buffers sized for the largest
//     intermediate, allocated (64-byte aligned) and touched once at plan time, so no call
//     allocates or page-faults; the last step writes straight into the caller's output;
//   * each step calls the same op-level run function a single layer calls
//     (f32_inverted_residual_run, f32_se_inverted_residual_run, f32_conv1x1_run,
//     f32_dwconv_run), so a chained network is
//     bit-identical to the same layers run one by one, and each step keeps its own OpenMP
//     parallel region (num_threads per call, like every op).
// The chain holds raw pointers to the packs: the caller keeps them alive and unchanged, and
// builds a new chain when a pack changes. run() is serialised by a mutex (the buffers are
// shared state), so concurrent callers are safe, one at a time.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/common.h"
#include "kernels/f32-dwconv/f32_dwconv.h"
#include "kernels/f32-gemm/f32_gemm.h"
#include "ops/f32_inverted_residual_op.h"
#include "ops/f32_se_inverted_residual_op.h"

namespace mk {

// Dense NHWC activation shape.
struct F32ChainShape {
  int64_t N, H, W, C;
  int64_t numel() const { return N * H * W * C; }
};

class F32Chain {
 public:
  // `input`: shape of the tensor run() will read (N may be 0; H, W, C must be positive).
  explicit F32Chain(const F32ChainShape& input);

  // Each add validates the step against the current shape and advances it; on error it throws
  // std::invalid_argument("chain step <i> (<kind>): ...") and leaves the chain unchanged.
  // Fused block: p.N, p.H, p.W are taken from the chain; p.Cin must equal the current C.
  void add_inverted_residual(F32InvertedResidualParams p, const float* expand_pack,
                             int64_t expand_numel, const float* dw_pack, int64_t dw_numel,
                             const float* project_pack, int64_t project_numel);
  // Fused block with squeeze-excitation: as add_inverted_residual, p.ir.N/H/W from the chain.
  void add_se_inverted_residual(F32SEInvertedResidualParams p, const float* expand_pack,
                                int64_t expand_numel, const float* dw_pack, int64_t dw_numel,
                                const float* project_pack, int64_t project_numel,
                                const float* fc1_pack, int64_t fc1_numel, const float* fc2_pack,
                                int64_t fc2_numel);
  // 1x1 convolution current C -> cout (+bias, act).
  void add_conv1x1(int64_t cout, Activation act, const float* pack, int64_t numel);
  // Depthwise convolution, cout a multiple of the current C (depth multiplier), zero padding
  // (top, bottom, left, right), output size by torch's formula.
  void add_dwconv(int64_t cout, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                  int64_t dw, int64_t pt, int64_t pb, int64_t pl, int64_t pr, Activation act,
                  const float* pack, int64_t numel);

  // x: dense NHWC input_shape(); out: dense NHWC output_shape(), not overlapping x. Needs at
  // least one step. Allocates the buffers on the first call after a step was added.
  void run(const float* x, float* out, int num_threads);

  F32ChainShape input_shape() const { return input_; }
  F32ChainShape output_shape() const { return shape_; }
  int64_t size() const { return static_cast<int64_t>(steps_.size()); }
  // Floats in each of the two intermediate buffers (the largest intermediate activation).
  int64_t buffer_floats() const;
  // One line per step: kind, shapes and the kernels the active ISA level runs.
  std::string describe() const;

 private:
  enum class Kind { inverted_residual, conv1x1, dwconv, se_inverted_residual };
  struct Step {
    Kind kind;
    F32InvertedResidualParams ir;
    F32SEInvertedResidualParams se;
    F32GemmParams gemm;
    F32DwconvParams dw;
    const float* pack[5];
    int64_t numel[5];
    F32ChainShape out;
  };
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };

  void push(Step s);
  [[noreturn]] void fail(const char* kind, const std::string& what) const;
  void plan();

  F32ChainShape input_, shape_;
  std::vector<Step> steps_;
  std::unique_ptr<float[], FreeDeleter> buf_[2];
  int64_t buf_floats_ = 0;  // allocated floats per buffer
  std::mutex mu_;
};

}  // namespace mk
