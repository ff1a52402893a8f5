#include "ops/f32_conv_stem_op.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>

namespace mk {
namespace {

// A literal, not a std::string: validation runs on every call.
void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("conv2d_stem: ") + what);
}

}  // namespace

const F32ConvKernel& f32_conv_stem_kernel(Isa level) { return kernel_for(kF32ConvKernels, level); }

std::string f32_conv_stem_kernel_name() { return f32_conv_stem_kernel(active_isa()).name; }

void f32_conv_stem_validate(const F32ConvParams& p) {
  require(p.n >= 0, "batch must be non-negative");
  require(p.cin > 0 && p.h > 0 && p.w > 0, "input channels, height and width must be positive");
  require(p.cout > 0, "output channels must be positive");
  require(p.kh > 0 && p.kw > 0, "kernel size must be positive");
  require(p.sh > 0 && p.sw > 0, "stride must be positive");
  require(p.dh > 0 && p.dw > 0, "dilation must be positive");
  require(p.pt >= 0 && p.pb >= 0 && p.pl >= 0 && p.pr >= 0, "padding must be non-negative");
  require(p.h + p.pt + p.pb >= p.dh * (p.kh - 1) + 1 && p.w + p.pl + p.pr >= p.dw * (p.kw - 1) + 1,
          "dilated kernel is larger than the padded input");
  require(p.xs_n >= 0 && p.xs_c >= 0 && p.xs_h >= 0 && p.xs_w >= 0, "input strides must be non-negative");
  require(static_cast<int>(p.act) >= 0 && static_cast<int>(p.act) <= 3, "unknown activation");
}

void f32_conv_stem_run(const F32ConvParams& p, const float* x, const float* pack,
                       int64_t packed_numel, float* y, int num_threads) {
  f32_conv_stem_validate(p);
  f32_conv_check_pack(pack, packed_numel, p.cin, p.cout, p.kh, p.kw);
  const int64_t rows = p.n * p.oh();
  if (rows == 0) return;
  const float* packed = f32_conv_pack_data(pack);
  const F32ConvKernel& k = f32_conv_stem_kernel(active_isa());
  // Work items: equal ranges of (image, output row); a row of the stem is 112 pixels x 32
  // channels (~190 kFLOP), so rows are fine-grained enough for any thread count.
  const int64_t items = std::min<int64_t>(std::max(1, num_threads), rows);
  if (items == 1) {
    k.run(p, x, packed, y, 0, rows);
    return;
  }
#pragma omp parallel for num_threads(static_cast<int>(items)) schedule(static)
  for (int64_t i = 0; i < items; ++i) k.run(p, x, packed, y, rows * i / items, rows * (i + 1) / items);
}

}  // namespace mk
