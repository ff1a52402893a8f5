#include "ops/f32_chain_op.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>

#include "ops/f32_conv1x1_op.h"
#include "ops/f32_dwconv_op.h"

namespace mk {
namespace {

constexpr size_t kBufferAlign = 64;  // a cache line, and a whole zmm

bool valid_act(Activation a) { return static_cast<int>(a) >= 0 && static_cast<int>(a) <= 3; }

const char* kind_name(int kind) {
  static const char* names[] = {"inverted_residual", "conv1x1", "dwconv", "se_inverted_residual"};
  return names[kind];
}

}  // namespace

F32Chain::F32Chain(const F32ChainShape& input) : input_(input), shape_(input) {
  if (input.N < 0 || input.H <= 0 || input.W <= 0 || input.C <= 0)
    throw std::invalid_argument("chain: input shape must have N >= 0 and positive H, W, C");
}

void F32Chain::fail(const char* kind, const std::string& what) const {
  throw std::invalid_argument("chain step " + std::to_string(steps_.size()) + " (" + kind +
                              "): " + what);
}

void F32Chain::push(Step s) {
  steps_.push_back(s);
  shape_ = s.out;
}

void F32Chain::add_inverted_residual(F32InvertedResidualParams p, const float* expand_pack,
                                     int64_t expand_numel, const float* dw_pack, int64_t dw_numel,
                                     const float* project_pack, int64_t project_numel) {
  const char* kind = kind_name(0);
  if (p.Cin != shape_.C)
    fail(kind, "expects " + std::to_string(p.Cin) + " input channels, the previous step gives " +
                   std::to_string(shape_.C));
  if ((p.expand && expand_pack == nullptr) || dw_pack == nullptr || project_pack == nullptr)
    fail(kind, "missing weight pack");
  p.N = shape_.N;
  p.H = shape_.H;
  p.W = shape_.W;
  try {
    f32_inverted_residual_validate(p);
    if (p.expand) f32_gemm_check_pack(expand_pack, expand_numel, p.Cin, p.Chid);
    f32_dwconv_check_pack(dw_pack, dw_numel, p.Chid, p.K, p.K);
    f32_gemm_check_pack(project_pack, project_numel, p.Chid, p.Cout);
  } catch (const std::invalid_argument& e) {
    fail(kind, e.what());
  }
  Step s{};
  s.kind = Kind::inverted_residual;
  s.ir = p;
  s.pack[0] = p.expand ? expand_pack : nullptr;
  s.numel[0] = p.expand ? expand_numel : 0;
  s.pack[1] = dw_pack;
  s.numel[1] = dw_numel;
  s.pack[2] = project_pack;
  s.numel[2] = project_numel;
  s.out = {p.N, p.OH(), p.OW(), p.Cout};
  push(s);
}

void F32Chain::add_se_inverted_residual(F32SEInvertedResidualParams p, const float* expand_pack,
                                        int64_t expand_numel, const float* dw_pack,
                                        int64_t dw_numel, const float* project_pack,
                                        int64_t project_numel, const float* fc1_pack,
                                        int64_t fc1_numel, const float* fc2_pack,
                                        int64_t fc2_numel) {
  const char* kind = kind_name(3);
  F32InvertedResidualParams& q = p.ir;
  if (q.Cin != shape_.C)
    fail(kind, "expects " + std::to_string(q.Cin) + " input channels, the previous step gives " +
                   std::to_string(shape_.C));
  if ((q.expand && expand_pack == nullptr) || dw_pack == nullptr || project_pack == nullptr ||
      fc1_pack == nullptr || fc2_pack == nullptr)
    fail(kind, "missing weight pack");
  q.N = shape_.N;
  q.H = shape_.H;
  q.W = shape_.W;
  try {
    f32_se_inverted_residual_validate(p);
    if (q.expand) f32_gemm_check_pack(expand_pack, expand_numel, q.Cin, q.Chid);
    f32_dwconv_check_pack(dw_pack, dw_numel, q.Chid, q.K, q.K);
    f32_gemm_check_pack(project_pack, project_numel, q.Chid, q.Cout);
    f32_gemm_check_pack(fc1_pack, fc1_numel, q.Chid, p.Csq);
    f32_gemm_check_pack(fc2_pack, fc2_numel, p.Csq, q.Chid);
  } catch (const std::invalid_argument& e) {
    fail(kind, e.what());
  }
  Step s{};
  s.kind = Kind::se_inverted_residual;
  s.se = p;
  const float* packs[5] = {q.expand ? expand_pack : nullptr, dw_pack, project_pack, fc1_pack,
                           fc2_pack};
  const int64_t numels[5] = {q.expand ? expand_numel : 0, dw_numel, project_numel, fc1_numel,
                             fc2_numel};
  for (int i = 0; i < 5; ++i) {
    s.pack[i] = packs[i];
    s.numel[i] = numels[i];
  }
  s.out = {q.N, q.OH(), q.OW(), q.Cout};
  push(s);
}

void F32Chain::add_conv1x1(int64_t cout, Activation act, const float* pack, int64_t numel) {
  const char* kind = kind_name(1);
  if (!valid_act(act)) fail(kind, "unknown activation");
  if (pack == nullptr) fail(kind, "missing weight pack");
  const F32GemmParams g{shape_.N * shape_.H * shape_.W, shape_.C, cout, shape_.C, cout, act,
                        nullptr, 0};
  try {
    f32_gemm_validate(g);
    f32_gemm_check_pack(pack, numel, shape_.C, cout);
  } catch (const std::invalid_argument& e) {
    fail(kind, e.what());
  }
  Step s{};
  s.kind = Kind::conv1x1;
  s.gemm = g;
  s.pack[0] = pack;
  s.numel[0] = numel;
  s.out = {shape_.N, shape_.H, shape_.W, cout};
  push(s);
}

void F32Chain::add_dwconv(int64_t cout, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                          int64_t dw, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
                          Activation act, const float* pack, int64_t numel) {
  const char* kind = kind_name(2);
  const F32ChainShape& in = shape_;
  if (cout < 1 || cout % in.C != 0)
    fail(kind, std::to_string(cout) + " output channels is not a positive multiple of the " +
                   std::to_string(in.C) + " input channels");
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || dh < 1 || dw < 1)
    fail(kind, "kernel, stride and dilation must be >= 1");
  if (pt < 0 || pb < 0 || pl < 0 || pr < 0) fail(kind, "padding must be non-negative");
  if (pack == nullptr) fail(kind, "missing weight pack");
  const int64_t ext_h = dh * (kh - 1) + 1, ext_w = dw * (kw - 1) + 1;
  if (in.H + pt + pb < ext_h || in.W + pl + pr < ext_w)
    fail(kind, "the dilated kernel is larger than the padded " + std::to_string(in.H) + "x" +
                   std::to_string(in.W) + " input");
  const F32DwconvParams p{in.N, in.H, in.W, in.C, cout / in.C, kh, kw, sh, sw, dh, dw, pt, pl,
                          (in.H + pt + pb - ext_h) / sh + 1, (in.W + pl + pr - ext_w) / sw + 1,
                          act};
  try {
    f32_dwconv_validate(p);
    f32_dwconv_check_pack(pack, numel, cout, kh, kw);
  } catch (const std::invalid_argument& e) {
    fail(kind, e.what());
  }
  Step s{};
  s.kind = Kind::dwconv;
  s.dw = p;
  s.pack[0] = pack;
  s.numel[0] = numel;
  s.out = {in.N, p.OH, p.OW, cout};
  push(s);
}

int64_t F32Chain::buffer_floats() const {
  // Every output but the last one lands in a buffer.
  int64_t most = 0;
  for (size_t i = 0; i + 1 < steps_.size(); ++i) most = std::max(most, steps_[i].out.numel());
  return most;
}

void F32Chain::plan() {
  const int64_t floats = buffer_floats();
  if (floats <= buf_floats_) return;
  const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + kBufferAlign - 1) /
                       kBufferAlign * kBufferAlign;
  for (auto& b : buf_) {
    b.reset();
    float* p = static_cast<float*>(std::aligned_alloc(kBufferAlign, bytes));
    if (p == nullptr) throw std::bad_alloc();
    // Touch every page now, so no run() takes a page fault.
    std::memset(p, 0, bytes);
    b.reset(p);
  }
  buf_floats_ = floats;
}

void F32Chain::run(const float* x, float* out, int num_threads) {
  std::lock_guard<std::mutex> lock(mu_);
  if (steps_.empty()) throw std::invalid_argument("chain: no steps to run");
  plan();
  const float* src = x;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    // Ping-pong: a step never reads the buffer it writes (the residual reads its input).
    float* dst = i + 1 == steps_.size() ? out : buf_[i % 2].get();
    switch (s.kind) {
      case Kind::inverted_residual:
        f32_inverted_residual_run(s.ir, src, s.pack[0], s.numel[0], s.pack[1], s.numel[1],
                                  s.pack[2], s.numel[2], dst, num_threads);
        break;
      case Kind::se_inverted_residual:
        f32_se_inverted_residual_run(s.se, src, s.pack[0], s.numel[0], s.pack[1], s.numel[1],
                                     s.pack[2], s.numel[2], s.pack[3], s.numel[3], s.pack[4],
                                     s.numel[4], dst, num_threads);
        break;
      case Kind::conv1x1:
        f32_conv1x1_run(s.gemm, src, s.pack[0], s.numel[0], dst, num_threads);
        break;
      case Kind::dwconv:
        f32_dwconv_run(s.dw, src, s.pack[0], dst, num_threads);
        break;
    }
    src = dst;
  }
}

std::string F32Chain::describe() const {
  std::string out;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    const F32ChainShape in = i == 0 ? input_ : steps_[i - 1].out;
    std::string line = std::to_string(i) + " " + kind_name(static_cast<int>(s.kind)) + " " +
                       std::to_string(in.H) + "x" + std::to_string(in.W) + "x" +
                       std::to_string(in.C) + " -> " + std::to_string(s.out.H) + "x" +
                       std::to_string(s.out.W) + "x" + std::to_string(s.out.C) + ": ";
    switch (s.kind) {
      case Kind::inverted_residual: line += f32_inverted_residual_kernel_name(s.ir); break;
      case Kind::se_inverted_residual: line += f32_se_inverted_residual_kernel_name(s.se); break;
      case Kind::conv1x1: line += "gemm " + f32_conv1x1_kernel_name(); break;
      case Kind::dwconv: line += "dwconv " + f32_dwconv_kernel_name(s.dw); break;
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace mk
