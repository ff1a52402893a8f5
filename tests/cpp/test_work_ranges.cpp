// WorkRanges (ops/work_ranges.h), the fp32 drivers' work sharing: every item is taken exactly
// once, owners take their own range front to back, and the items of a thread that does not
// start (or starts late) are taken by the others from the back.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "ops/work_ranges.h"

using mk::WorkRanges;

namespace {

// Runs `items` items on `threads` OpenMP threads; thread `late` (if >= 0) sleeps first.
// Returns how often each item was taken and, per item, the thread that took it.
void take_all(int64_t items, int threads, int late, std::vector<int>& count, std::vector<int>& who) {
  WorkRanges r;
  r.init(items, threads);
  std::vector<std::atomic<int>> c(static_cast<size_t>(items));
  who.assign(static_cast<size_t>(items), -1);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    if (t == late) std::this_thread::sleep_for(std::chrono::milliseconds(30));
    for (int64_t i; (i = r.next(t)) >= 0;) {
      c[i].fetch_add(1);
      who[i] = t;
    }
  }
  count.assign(static_cast<size_t>(items), 0);
  for (int64_t i = 0; i < items; ++i) count[i] = c[i].load();
}

TEST(WorkRanges, EveryItemOnceForAnyThreadCount) {
  for (int threads : {1, 2, 3, 5})
    for (int64_t items : {0, 1, 2, 3, 7, 64, 1000}) {
      std::vector<int> count, who;
      take_all(items, threads, -1, count, who);
      for (int64_t i = 0; i < items; ++i)
        ASSERT_EQ(count[i], 1) << "item " << i << " of " << items << ", " << threads << " threads";
    }
}

TEST(WorkRanges, OneThreadTakesItemsInOrder) {
  WorkRanges r;
  r.init(5, 1);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(r.next(0), i);
  EXPECT_EQ(r.next(0), -1);
  EXPECT_EQ(r.next(0), -1);
}

TEST(WorkRanges, OwnRangeFrontToBackThenStealsFromTheBack) {
  // Sequentially (no threads): thread 0 owns [0, 3), thread 1 [3, 6).
  WorkRanges r;
  r.init(6, 2);
  EXPECT_EQ(r.next(0), 0);
  EXPECT_EQ(r.next(0), 1);
  EXPECT_EQ(r.next(0), 2);
  EXPECT_EQ(r.next(0), 5);  // its own range is empty: the back of thread 1's
  EXPECT_EQ(r.next(1), 3);
  EXPECT_EQ(r.next(1), 4);
  EXPECT_EQ(r.next(1), -1);
  EXPECT_EQ(r.next(0), -1);
  // Reused for another call: ranges start over.
  r.init(4, 3);  // [0, 1), [1, 2), [2, 4)
  EXPECT_EQ(r.next(1), 1);
  EXPECT_EQ(r.next(1), 3);  // the fullest other range is thread 2's
  EXPECT_EQ(r.next(2), 2);
  EXPECT_EQ(r.next(2), 0);
  EXPECT_EQ(r.next(0), -1);
}

TEST(WorkRanges, ALateThreadsItemsAreTakenByTheOthers) {
  for (int threads : {2, 3}) {
    std::vector<int> count, who;
    take_all(300, threads, threads - 1, count, who);
    int taken_by_others = 0;
    for (int64_t i = 0; i < 300; ++i) {
      ASSERT_EQ(count[i], 1);
      if (i >= 300 * (threads - 1) / threads && who[i] != threads - 1) ++taken_by_others;
    }
    // The late thread's range was taken from the back while it slept, if the team really
    // had `threads` threads running at once; with fewer, the others took all of it anyway.
    EXPECT_GT(taken_by_others, 0);
  }
}

}  // namespace
