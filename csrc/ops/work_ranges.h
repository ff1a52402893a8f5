// Work sharing for the fp32 drivers' parallel regions: items [0, n) start as one contiguous
// range per thread (thread t: [n*t/T, n*(t+1)/T)); each thread takes its own items front to
// back, then takes items one at a time from the back of the range with the most left.
//
// Why not OpenMP's static split: the 2 vCPUs here are not always equally fast (the host runs
// work on their SMT siblings for seconds at a time: one core then does ~half its FMA rate), and
// a static split then waits for the slow core. Why not schedule(dynamic): the fused blocks keep
// the expanded halo rows of the previous band, so a thread should walk consecutive bands; here
// a thread's own items are consecutive and only the few items it takes from another thread's
// back are not.
//
// Each range is one 64-bit word (begin, end), changed only by compare-and-swap, so the owner
// (front) and a thief (back) never both take the last item. init() runs before the region,
// next() inside it; the items are the same whoever runs them, so results do not depend on who
// took what.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

namespace mk {

class WorkRanges {
 public:
  // Items [0, items) over `threads` ranges. Reuses its storage across calls.
  void init(int64_t items, int threads) {
    threads_ = std::max(1, threads);
    if (threads_ > capacity_) {
      slots_.reset(new Slot[static_cast<size_t>(threads_)]);
      capacity_ = threads_;
    }
    for (int t = 0; t < threads_; ++t)
      slots_[t].range.store(pack(items * t / threads_, items * (t + 1) / threads_),
                            std::memory_order_relaxed);
  }

  // The next item for thread t (0 <= t < threads), or -1 when none is left anywhere.
  int64_t next(int t) {
    std::atomic<uint64_t>& own = slots_[t].range;
    uint64_t r = own.load(std::memory_order_relaxed);
    while (begin(r) < end(r))
      if (own.compare_exchange_weak(r, pack(begin(r) + 1, end(r)), std::memory_order_relaxed))
        return begin(r);
    for (;;) {  // own range empty: take the last item of the fullest other range
      int victim = -1;
      int64_t most = 0;
      for (int v = 0; v < threads_; ++v) {
        const uint64_t q = slots_[v].range.load(std::memory_order_relaxed);
        if (end(q) - begin(q) > most) most = end(q) - begin(q), victim = v;
      }
      if (victim < 0) return -1;
      std::atomic<uint64_t>& other = slots_[victim].range;
      uint64_t q = other.load(std::memory_order_relaxed);
      while (begin(q) < end(q))
        if (other.compare_exchange_weak(q, pack(begin(q), end(q) - 1), std::memory_order_relaxed))
          return end(q) - 1;
    }
  }

 private:
  // Item indices fit 32 bits (a call's items are rows or channel tiles, far below 2^32).
  static uint64_t pack(int64_t b, int64_t e) { return uint64_t(b) << 32 | uint64_t(e); }
  static int64_t begin(uint64_t r) { return int64_t(r >> 32); }
  static int64_t end(uint64_t r) { return int64_t(r & 0xffffffffu); }

  struct alignas(64) Slot {  // one cache line each: owners do not share lines
    std::atomic<uint64_t> range{0};
  };
  std::unique_ptr<Slot[]> slots_;
  int capacity_ = 0, threads_ = 1;
};

}  // namespace mk
