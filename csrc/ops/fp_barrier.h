// fp_barrier(v): keeps v rounded to fp32 where it is. Without it the compiler may contract
// a * b + c * d into an FMA (aarch64 has FMA in its baseline, and x86 files built with -mfma),
// which torch's separate mul / add ops never do; the int8 glue that must match torch's rounding
// bit for bit (residual adds) passes its products through it.
#pragma once

namespace mk {

template <class T>
inline T fp_barrier(T v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(v));
#else
  volatile T t = v;
  v = t;
#endif
  return v;
}

}  // namespace mk
