// CPU kernels of the kruzoo ops and the operator schema (TORCH_LIBRARY(kruzoo, m)).
//
// Layout: the op interface uses real pairs (view_as_real of complex: interleaved re, im).  Inside
// a kernel the state of one sequence is kept planar (a re array and an im array, a few KiB, in
// L1) so that every loop is a plain stride-1 loop the compiler vectorises; interleaving happens
// only when a step reads its input projection and writes its outputs.
//
// Parallelism: at::parallel_for over the batch (recurrence) or rows (matvec).  Each sequence runs
// its whole time loop inside one task, so there is no per-step synchronisation.
//
// W h is applied as a sequence of grouped factors G_1..G_m, each contracting one axis of the
// state viewed as (before, q, rest).  Two kernels:
//   rest >= one vector: loop over i, j and vectorise over `rest` (accumulators in registers);
//   rest == 1 (the last group): vectorise over the row index i with G stored column major.
// The grouping (kru_plan.cpp) makes the last group at least one vector wide, so both kernels run
// at full vector width for the usual power-of-two shapes; other shapes use a generic loop.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define KRU_HAVE_MXCSR 1
#endif

#include "kru_math.h"
#include "kru_plan.h"

namespace kru {
namespace {

// The SIMD width follows the build target, so that every ISA runs at its native width: a fixed
// 64-byte vector built for AVX2 made GCC emulate it on pairs of 256-bit registers (and its lane
// permutations with run-time index vectors), 5x slower than 32-byte vectors on the same machine.
//   AVX-512: 64 bytes, AVX/AVX2: 32, SSE2 / NEON / VSX: 16, anything else (MSVC, unknown
//   targets): scalar.  -DKRU_VEC_BYTES=<n> overrides (0 = the scalar path; tests build it).
// Written with explicit vector types: left to itself, GCC vectorised the wrong loop of the
// small-matrix kernels (the j loop, with gathers) and ran ~10x slower.
#if !defined(KRU_VEC_BYTES)
#if !(defined(__GNUC__) || defined(__clang__))
#define KRU_VEC_BYTES 0
#elif defined(__AVX512F__)
#define KRU_VEC_BYTES 64
#elif defined(__AVX__)
#define KRU_VEC_BYTES 32
#elif defined(__SSE2__) || defined(__ARM_NEON) || defined(__aarch64__) || defined(__ALTIVEC__) || \
    defined(__riscv_vector)
#define KRU_VEC_BYTES 16
#else
#define KRU_VEC_BYTES 0
#endif
#endif
#if KRU_VEC_BYTES != 0 && KRU_VEC_BYTES != 16 && KRU_VEC_BYTES != 32 && KRU_VEC_BYTES != 64
#error "KRU_VEC_BYTES must be 0 (scalar), 16, 32 or 64"
#endif
#if KRU_VEC_BYTES > 0 && !(defined(__GNUC__) || defined(__clang__))
#error "SIMD vector types need GCC or clang; build with -DKRU_VEC_BYTES=0"
#endif
// Never wider than the target's registers: a wider vector would be emulated, silently and slowly.
#if (defined(__x86_64__) || defined(__i386__)) && \
    ((KRU_VEC_BYTES == 64 && !defined(__AVX512F__)) || (KRU_VEC_BYTES == 32 && !defined(__AVX__)) || \
     (KRU_VEC_BYTES == 16 && !defined(__SSE2__)))
#error "KRU_VEC_BYTES is wider than this target's vector registers"
#endif
#if !(defined(__x86_64__) || defined(__i386__)) && KRU_VEC_BYTES > 16
#error "KRU_VEC_BYTES > 16 is only supported on x86 (AVX / AVX-512)"
#endif

// Scalars per vector (1 on the scalar path).
template <typename S>
constexpr int kV = KRU_VEC_BYTES >= static_cast<int>(sizeof(S)) ? KRU_VEC_BYTES / static_cast<int>(sizeof(S)) : 1;

#if KRU_VEC_BYTES > 0
template <typename S>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(KRU_VEC_BYTES)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(KRU_VEC_BYTES)));
};
template <typename S>
using Vec = typename VecOf<S>::type;
template <typename S>
inline Vec<S> vsplat(S x) {
  return Vec<S>{} + x;
}
template <typename S>
inline Vec<S> vload(const S* p) {
  Vec<S> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename S>
inline void vstore(S* p, const Vec<S>& v) {
  std::memcpy(p, &v, sizeof v);
}

// Lane permutation x[l] -> x[l ^ Sh] (the partner lane of a 2x2 factor at lane stride Sh), with a
// compile-time pattern so that the compiler emits the ISA's own shuffle (vpermilps, vperm2f128,
// vshuff32x4, ext/rev on NEON ...), never a run-time index vector.
template <typename S>
using MaskOf = std::conditional_t<sizeof(S) == 4, int32_t, int64_t>;
template <int Sh, typename S, int... L>
inline Vec<S> perm_xor_impl(const Vec<S>& x, std::integer_sequence<int, L...>) {
#if defined(__clang__)
  return __builtin_shufflevector(x, x, (L ^ Sh)...);
#else
  typedef MaskOf<S> M __attribute__((vector_size(KRU_VEC_BYTES)));
  return __builtin_shuffle(x, M{(L ^ Sh)...});
#endif
}
template <int Sh, typename S>
inline Vec<S> perm_xor(const Vec<S>& x) {
  return perm_xor_impl<Sh, S>(x, std::make_integer_sequence<int, kV<S>>{});
}
#else
// The scalar path: a "vector" of one lane (every kernel keeps its structure; no lane tail).
template <typename S>
using Vec = S;
template <typename S>
inline S vsplat(S x) {
  return x;
}
template <typename S>
inline S vload(const S* p) {
  return *p;
}
template <typename S>
inline void vstore(S* p, const S& v) {
  *p = v;
}
template <int Sh, typename S>
inline S perm_xor(const S& x) {
  static_assert(Sh == 0, "no lane permutations on the scalar path");
  return x;
}
#endif

// log2 of the lanes: the number of 2x2 factors a lane tail holds (0 on the scalar path).
template <typename S>
constexpr int kTail = kV<S> >= 16 ? 4 : kV<S> >= 8 ? 3 : kV<S> >= 4 ? 2 : kV<S> >= 2 ? 1 : 0;

// Calls fn(std::integral_constant<int, f>) for f = 0 .. N-1: the lane-tail loops, unrolled so that
// each factor's permutation is a compile-time pattern.
template <typename Fn, int... F>
inline void for_each_factor_impl(Fn&& fn, std::integer_sequence<int, F...>) {
  (fn(std::integral_constant<int, F>{}), ...);
}
template <int N, typename Fn>
inline void for_each_factor(Fn&& fn) {
  for_each_factor_impl(fn, std::make_integer_sequence<int, N>{});
}
template <typename Fn, int... F>
inline void for_each_factor_rev_impl(Fn&& fn, std::integer_sequence<int, F...>) {
  (fn(std::integral_constant<int, static_cast<int>(sizeof...(F)) - 1 - F>{}), ...);
}
template <int N, typename Fn>
inline void for_each_factor_rev(Fn&& fn) {
  for_each_factor_rev_impl(fn, std::make_integer_sequence<int, N>{});
}

// The ISA the kernels were compiled for, reported by kruzoo::build_info (the benchmark prints it).
constexpr const char* kIsa =
#if KRU_VEC_BYTES == 0
    "scalar";
#elif defined(__AVX512F__) && KRU_VEC_BYTES == 64
    "avx512";
#elif defined(__AVX2__) && KRU_VEC_BYTES == 32
    "avx2";
#elif defined(__AVX__) && KRU_VEC_BYTES == 32
    "avx";
#elif defined(__aarch64__) || defined(__ARM_NEON)
    "neon";
#elif defined(__SSE4_2__) && KRU_VEC_BYTES == 16
    "sse4.2";
#elif defined(__SSE2__) && KRU_VEC_BYTES == 16
    "sse2";
#else
    "generic-simd";
#endif

// A complex SIMD vector (planar: re lanes, im lanes).
template <typename S>
struct CVec {
  Vec<S> r, i;
};


// at::parallel_for runs chunks on pool threads whose FTZ/DAZ flags are their own.  Copy the
// caller's flags (torch.set_flush_denormal) into each chunk so the op honours them: decaying
// states and BPTT gradients otherwise run into denormals, which cost ~100x per operation.
struct FpScope {
#ifdef KRU_HAVE_MXCSR
  unsigned saved;
  explicit FpScope(unsigned caller) : saved(_mm_getcsr()) {
    _mm_setcsr((saved & ~0x8040u) | (caller & 0x8040u));
  }
  ~FpScope() { _mm_setcsr(saved); }
  static unsigned caller() { return _mm_getcsr(); }
#else
  explicit FpScope(unsigned) {}
  static unsigned caller() { return 0; }
#endif
};

// y[b, :] = sum_j x[b, j] * MT[j, :]  with MT the (cols x R) transpose of the applied matrix;
// R a multiple of the vector length: the R outputs of one b stay in registers.
template <typename S, int R>
void row_fixed(const S* __restrict__ mtr, const S* __restrict__ mti, int cols, int64_t before,
               const S* __restrict__ xr, const S* __restrict__ xi, S* __restrict__ yr,
               S* __restrict__ yi) {
  constexpr int V = kV<S>;
  constexpr int NV = R / V;
  static_assert(R % V == 0, "row_fixed needs whole vectors");
  for (int64_t b = 0; b < before; ++b) {
    Vec<S> ar[NV], ai[NV];
    for (int u = 0; u < NV; ++u) ar[u] = ai[u] = vsplat<S>(0);
    const S* xbr = xr + b * cols;
    const S* xbi = xi + b * cols;
    for (int j = 0; j < cols; ++j) {
      const Vec<S> vr = vsplat(xbr[j]), vi = vsplat(xbi[j]);
      const S* wr = mtr + static_cast<int64_t>(j) * R;
      const S* wi = mti + static_cast<int64_t>(j) * R;
      for (int u = 0; u < NV; ++u) {
        const Vec<S> w_r = vload(wr + u * V), w_i = vload(wi + u * V);
        ar[u] += w_r * vr - w_i * vi;
        ai[u] += w_r * vi + w_i * vr;
      }
    }
    for (int u = 0; u < NV; ++u) {
      vstore(yr + b * R + u * V, ar[u]);
      vstore(yi + b * R + u * V, ai[u]);
    }
  }
}

template <typename S, int R>
bool row_try(const S* mt, int64_t n, int cols, int64_t before, const S* xr, const S* xi, S* yr, S* yi) {
  if constexpr (R % kV<S> == 0) {
    row_fixed<S, R>(mt, mt + n, cols, before, xr, xi, yr, yi);
    return true;
  } else {
    return false;
  }
}

template <typename S>
void row_generic(const S* __restrict__ mtr, const S* __restrict__ mti, int rows, int cols,
                 int64_t before, const S* __restrict__ xr, const S* __restrict__ xi,
                 S* __restrict__ yr, S* __restrict__ yi) {
  for (int64_t b = 0; b < before; ++b) {
    S* ybr = yr + b * rows;
    S* ybi = yi + b * rows;
    std::fill(ybr, ybr + rows, S(0));
    std::fill(ybi, ybi + rows, S(0));
    for (int j = 0; j < cols; ++j) {
      const S vr = xr[b * cols + j], vi = xi[b * cols + j];
      const S* wr = mtr + static_cast<int64_t>(j) * rows;
      const S* wi = mti + static_cast<int64_t>(j) * rows;
      for (int i = 0; i < rows; ++i) cmul_acc(wr[i], wi[i], vr, vi, ybr[i], ybi[i]);
    }
  }
}

// y[b, i, :] = sum_j M[i, j] x[b, j, :]  over a (before, cols, rest) tensor.
template <typename S>
void rest_kernel(const S* __restrict__ mr, const S* __restrict__ mi, int rows, int cols,
                 int64_t before, int64_t rest, const S* __restrict__ xr,
                 const S* __restrict__ xi, S* __restrict__ yr, S* __restrict__ yi) {
  constexpr int V = kV<S>;
  if (rest % V == 0) {
    for (int64_t b = 0; b < before; ++b) {
      for (int64_t r0 = 0; r0 < rest; r0 += V) {
        const S* xbr = xr + b * cols * rest + r0;
        const S* xbi = xi + b * cols * rest + r0;
        for (int i = 0; i < rows; ++i) {
          Vec<S> ar = vsplat<S>(0), ai = vsplat<S>(0);
          for (int j = 0; j < cols; ++j) {
            const Vec<S> wr = vsplat(mr[i * cols + j]), wi = vsplat(mi[i * cols + j]);
            const Vec<S> pr = vload(xbr + j * rest), pi = vload(xbi + j * rest);
            ar += wr * pr - wi * pi;
            ai += wr * pi + wi * pr;
          }
          vstore(yr + (b * rows + i) * rest + r0, ar);
          vstore(yi + (b * rows + i) * rest + r0, ai);
        }
      }
    }
    return;
  }
  for (int64_t b = 0; b < before; ++b) {
    for (int i = 0; i < rows; ++i) {
      S* o_r = yr + (b * rows + i) * rest;
      S* o_i = yi + (b * rows + i) * rest;
      std::fill(o_r, o_r + rest, S(0));
      std::fill(o_i, o_i + rest, S(0));
      for (int j = 0; j < cols; ++j) {
        const S wr = mr[i * cols + j], wi = mi[i * cols + j];
        const S* pr = xr + (b * cols + j) * rest;
        const S* pi = xi + (b * cols + j) * rest;
        for (int64_t r = 0; r < rest; ++r) cmul_acc(wr, wi, pr[r], pi[r], o_r[r], o_i[r]);
      }
    }
  }
}

// rest_kernel for the small grouped factors of the usual shapes (P, Q in {2, 4, 8}), with the
// sizes known at compile time: the Q input vectors of one (b, r0) column are loaded once and
// reused by all P rows (rest_kernel reloads them for every row), and the loops unroll fully.
template <typename S, int P, int Q>
void rest_small(const S* __restrict__ mr, const S* __restrict__ mi, int64_t before, int64_t rest,
                const S* __restrict__ xr, const S* __restrict__ xi, S* __restrict__ yr,
                S* __restrict__ yi) {
  constexpr int V = kV<S>;
  for (int64_t b = 0; b < before; ++b) {
    const S* xbr = xr + b * Q * rest;
    const S* xbi = xi + b * Q * rest;
    S* ybr = yr + b * P * rest;
    S* ybi = yi + b * P * rest;
    for (int64_t r0 = 0; r0 < rest; r0 += V) {
      Vec<S> pr[Q], pi[Q];
      for (int j = 0; j < Q; ++j) {
        pr[j] = vload(xbr + j * rest + r0);
        pi[j] = vload(xbi + j * rest + r0);
      }
      for (int i = 0; i < P; ++i) {
        Vec<S> ar = vsplat(mr[i * Q]) * pr[0], ai = vsplat(mr[i * Q]) * pi[0];
        ar -= vsplat(mi[i * Q]) * pi[0];
        ai += vsplat(mi[i * Q]) * pr[0];
        for (int j = 1; j < Q; ++j) {
          const Vec<S> wr = vsplat(mr[i * Q + j]), wi = vsplat(mi[i * Q + j]);
          ar += wr * pr[j] - wi * pi[j];
          ai += wr * pi[j] + wi * pr[j];
        }
        vstore(ybr + i * rest + r0, ar);
        vstore(ybi + i * rest + r0, ai);
      }
    }
  }
}

// Dispatch to rest_small when (rows, cols) is one of its instantiations.
template <typename S>
bool rest_small_try(const S* mr, const S* mi, int rows, int cols, int64_t before, int64_t rest,
                    const S* xr, const S* xi, S* yr, S* yi) {
  if (rest % kV<S> != 0) return false;
#define KRU_REST_SMALL(P_, Q_)                                        \
  if (rows == P_ && cols == Q_) {                                     \
    rest_small<S, P_, Q_>(mr, mi, before, rest, xr, xi, yr, yi);      \
    return true;                                                      \
  }
  KRU_REST_SMALL(2, 2)
  KRU_REST_SMALL(4, 4)
  KRU_REST_SMALL(2, 4)
  KRU_REST_SMALL(4, 2)
  KRU_REST_SMALL(8, 8)
#undef KRU_REST_SMALL
  return false;
}

// The kLane gradient contraction acc[i, j] += sum over (b, r) of g[b, i, r] conj(z[b, j, r]) for the
// small groups, sizes known at compile time: one pass per row i keeps the Q accumulators of that
// row in registers and loads g's row once per column (the generic loop walks the data once per
// (i, j) and, at rest = one vector, spends its time on loop overhead).
template <typename S, int P, int Q>
void contract_small(int64_t before, int64_t rest, const S* __restrict__ gr, const S* __restrict__ gi,
                    const S* __restrict__ zr, const S* __restrict__ zi, S* __restrict__ a) {
  constexpr int V = kV<S>;
  for (int i = 0; i < P; ++i) {
    Vec<S> accr[Q], acci[Q];
    for (int j = 0; j < Q; ++j) {
      accr[j] = vload(a + (i * Q + j) * 2 * V);
      acci[j] = vload(a + (i * Q + j) * 2 * V + V);
    }
    for (int64_t b = 0; b < before; ++b) {
      const S* g_r = gr + (b * P + i) * rest;
      const S* g_i = gi + (b * P + i) * rest;
      const S* z_r = zr + b * Q * rest;
      const S* z_i = zi + b * Q * rest;
      for (int64_t r0 = 0; r0 < rest; r0 += V) {
        const Vec<S> xr_ = vload(g_r + r0), xi_ = vload(g_i + r0);
        for (int j = 0; j < Q; ++j) {
          const Vec<S> yr_ = vload(z_r + j * rest + r0), yi_ = vload(z_i + j * rest + r0);
          accr[j] += xr_ * yr_ + xi_ * yi_;
          acci[j] += xi_ * yr_ - xr_ * yi_;
        }
      }
    }
    for (int j = 0; j < Q; ++j) {
      vstore(a + (i * Q + j) * 2 * V, accr[j]);
      vstore(a + (i * Q + j) * 2 * V + V, acci[j]);
    }
  }
}

template <typename S>
bool contract_small_try(int p, int q, int64_t before, int64_t rest, const S* gr, const S* gi, const S* zr,
                        const S* zi, S* a) {
#define KRU_CONTRACT_SMALL(P_, Q_)                                   \
  if (p == P_ && q == Q_) {                                          \
    contract_small<S, P_, Q_>(before, rest, gr, gi, zr, zi, a);      \
    return true;                                                     \
  }
  KRU_CONTRACT_SMALL(2, 2)
  KRU_CONTRACT_SMALL(4, 4)
  KRU_CONTRACT_SMALL(2, 4)
  KRU_CONTRACT_SMALL(4, 2)
#undef KRU_CONTRACT_SMALL
  return false;
}

enum class AccMode { kLane, kRow, kGeneric, kTail };

// The grouped factors of one plan, with the CPU gradient-accumulator layout:
//   kLane    (rest a multiple of V): per (i, j) V partial sums of re, then V of im
//   kRow     (rest == 1): re block then im block, indexed j * p + i (vectorised over i)
//   kGeneric : re block then im block, indexed i * q + j
template <typename S>
struct CpuKron {
  const Plan& pl;
  const S* packed;
  std::vector<AccMode> mode;
  std::vector<int64_t> acc_off;  // offset of each group's accumulator
  int64_t acc_size = 0;

  CpuKron(const Plan& plan, const S* pk) : pl(plan), packed(pk) {
    for (int k = 0; k < pl.m; ++k) {
      const Group& g = pl.g[k];
      const int64_t pq = static_cast<int64_t>(g.p) * g.q;
      AccMode md = g.lane_tail      ? AccMode::kTail
                   : g.rest == 1    ? AccMode::kRow
                   : g.rest % kV<S> == 0 ? AccMode::kLane
                                         : AccMode::kGeneric;
      mode.push_back(md);
      acc_off.push_back(acc_size);
      acc_size += md == AccMode::kTail   ? 4 * kV<S> * g.lane_tail
                  : md == AccMode::kLane ? 2 * kV<S> * pq
                                         : 2 * pq;
      if (md == AccMode::kTail)
        TORCH_CHECK(g.lane_tail == kTail<S> && g.p == kV<S> && g.rest == 1,
                    "kruzoo: the plan's lane tail (", g.lane_tail, " factors of a ", g.p,
                    "-lane group) does not match this build's ", kV<S>, "-lane vectors");
    }
  }

  // The lane tail (see kru_plan.cpp): kTail 2x2 factors (log2 of the lanes), each one lane
  // permutation and two complex multiply-adds on a vector, instead of a dense V x V matrix
  // (~2x fewer operations).  Factor F is applied at lane stride V >> (F + 1).
  void load_tail(const Group& g, bool adjoint, CVec<S>* d, CVec<S>* o) const {
    constexpr int V = kV<S>;
    for (int f = 0; f < kTail<S>; ++f) {
      const S* c = packed + g.off_lane + f * 8 * V + (adjoint ? 4 * V : 0);
      d[f] = {vload(c), vload(c + V)};
      o[f] = {vload(c + 2 * V), vload(c + 3 * V)};
    }
  }

  template <int F>
  static CVec<S> tail_step(const CVec<S>& d, const CVec<S>& o, const CVec<S>& x) {
    constexpr int Sh = kV<S> >> (F + 1);
    const Vec<S> pr = perm_xor<Sh, S>(x.r), pi = perm_xor<Sh, S>(x.i);
    return {d.r * x.r - d.i * x.i + o.r * pr - o.i * pi, d.r * x.i + d.i * x.r + o.r * pi + o.i * pr};
  }

  void tail_apply(const Group& g, bool adjoint, const S* xr, const S* xi, S* yr, S* yi) const {
    if constexpr (kTail<S> > 0) {
      constexpr int V = kV<S>;
      CVec<S> d[kTail<S>], o[kTail<S>];
      load_tail(g, adjoint, d, o);
      for (int64_t b = 0; b < g.before; ++b) {
        CVec<S> x{vload(xr + b * V), vload(xi + b * V)};
        for_each_factor<kTail<S>>([&](auto fc) {
          constexpr int f = decltype(fc)::value;
          x = tail_step<f>(d[f], o[f], x);
        });
        vstore(yr + b * V, x.r);
        vstore(yi + b * V, x.i);
      }
    }
  }

  // Adjoint of the tail and its factor gradients in one pass: for each vector, recompute the
  // inputs of the tail's factors from z, then walk back accumulating  g z^H  per factor as
  // "diagonal" (same lane) and "off-diagonal" (partner lane) partial sums.
  void tail_backward(int k, const S* gr, const S* gi, const S* zr, const S* zi, S* outr, S* outi,
                     S* acc) const {
    if constexpr (kTail<S> > 0) {
      constexpr int V = kV<S>;
      constexpr int KT = kTail<S>;
      const Group& g = pl.g[k];
      CVec<S> fd[KT], fo[KT], ad[KT], ao[KT];
      load_tail(g, false, fd, fo);
      load_tail(g, true, ad, ao);
      S* A = acc + acc_off[k];
      CVec<S> accd[KT], acco[KT];
      for (int f = 0; f < KT; ++f) {
        accd[f] = {vload(A + f * 4 * V), vload(A + f * 4 * V + V)};
        acco[f] = {vload(A + f * 4 * V + 2 * V), vload(A + f * 4 * V + 3 * V)};
      }
      for (int64_t b = 0; b < g.before; ++b) {
        CVec<S> zz[KT];
        zz[0] = {vload(zr + b * V), vload(zi + b * V)};
        for_each_factor<KT - 1>([&](auto fc) {
          constexpr int f = decltype(fc)::value;
          zz[f + 1] = tail_step<f>(fd[f], fo[f], zz[f]);
        });
        CVec<S> gg{vload(gr + b * V), vload(gi + b * V)};
        for_each_factor_rev<KT>([&](auto fc) {
          constexpr int f = decltype(fc)::value;
          constexpr int Sh = V >> (f + 1);
          const Vec<S> pr = perm_xor<Sh, S>(zz[f].r), pi = perm_xor<Sh, S>(zz[f].i);
          accd[f].r += gg.r * zz[f].r + gg.i * zz[f].i;
          accd[f].i += gg.i * zz[f].r - gg.r * zz[f].i;
          acco[f].r += gg.r * pr + gg.i * pi;
          acco[f].i += gg.i * pr - gg.r * pi;
          gg = tail_step<f>(ad[f], ao[f], gg);
        });
        if (outr != nullptr) {
          vstore(outr + b * V, gg.r);
          vstore(outi + b * V, gg.i);
        }
      }
      for (int f = 0; f < KT; ++f) {
        vstore(A + f * 4 * V, accd[f].r);
        vstore(A + f * 4 * V + V, accd[f].i);
        vstore(A + f * 4 * V + 2 * V, acco[f].r);
        vstore(A + f * 4 * V + 3 * V, acco[f].i);
      }
    }
  }

  // dst = G_k src (adjoint=false) or G_k^H src (adjoint=true); planar re/im, dst != src.
  void apply(int k, bool adjoint, const S* xr, const S* xi, S* yr, S* yi) const {
    const Group& g = pl.g[k];
    const int rows = adjoint ? g.q : g.p;
    const int cols = adjoint ? g.p : g.q;
    const int64_t n = static_cast<int64_t>(rows) * cols;
    if (g.lane_tail) return tail_apply(g, adjoint, xr, xi, yr, yi);
    if (g.rest == 1) {
      const S* mt = packed + (adjoint ? g.off_fht : g.off_ft);
      switch (rows) {
        case 4: if (row_try<S, 4>(mt, n, cols, g.before, xr, xi, yr, yi)) return; break;
        case 8: if (row_try<S, 8>(mt, n, cols, g.before, xr, xi, yr, yi)) return; break;
        case 16: if (row_try<S, 16>(mt, n, cols, g.before, xr, xi, yr, yi)) return; break;
        case 32: if (row_try<S, 32>(mt, n, cols, g.before, xr, xi, yr, yi)) return; break;
        case 64: if (row_try<S, 64>(mt, n, cols, g.before, xr, xi, yr, yi)) return; break;
        default: break;
      }
      return row_generic<S>(mt, mt + n, rows, cols, g.before, xr, xi, yr, yi);
    }
    const S* mm = packed + (adjoint ? g.off_fh : g.off_f);
    if (rest_small_try<S>(mm, mm + n, rows, cols, g.before, g.rest, xr, xi, yr, yi)) return;
    rest_kernel<S>(mm, mm + n, rows, cols, g.before, g.rest, xr, xi, yr, yi);
  }

  // acc_k += g z^H summed over (before, rest): g is the gradient at the output of group k
  // (before, p, rest), z its input (before, q, rest).
  void contract(int k, const S* __restrict__ gr, const S* __restrict__ gi,
                const S* __restrict__ zr, const S* __restrict__ zi, S* __restrict__ acc) const {
    const Group& g = pl.g[k];
    const int p = g.p, q = g.q;
    const int64_t pq = static_cast<int64_t>(p) * q;
    S* a = acc + acc_off[k];
    switch (mode[k]) {
      case AccMode::kLane: {
        if (contract_small_try<S>(p, q, g.before, g.rest, gr, gi, zr, zi, a)) break;
        // Per (i, j) one vector of partial sums stays in registers across all (b, r).
        constexpr int V = kV<S>;
        for (int i = 0; i < p; ++i)
          for (int j = 0; j < q; ++j) {
            S* A = a + (static_cast<int64_t>(i) * q + j) * 2 * V;
            Vec<S> accr = vload(A), acci = vload(A + V);
            for (int64_t b = 0; b < g.before; ++b) {
              const S* g_r = gr + (b * p + i) * g.rest;
              const S* g_i = gi + (b * p + i) * g.rest;
              const S* z_r = zr + (b * q + j) * g.rest;
              const S* z_i = zi + (b * q + j) * g.rest;
              for (int64_t r0 = 0; r0 < g.rest; r0 += V) {
                const Vec<S> xr_ = vload(g_r + r0), xi_ = vload(g_i + r0);
                const Vec<S> yr_ = vload(z_r + r0), yi_ = vload(z_i + r0);
                accr += xr_ * yr_ + xi_ * yi_;
                acci += xi_ * yr_ - xr_ * yi_;
              }
            }
            vstore(A, accr);
            vstore(A + V, acci);
          }
        break;
      }
      case AccMode::kRow: {
        constexpr int V = kV<S>;
        if (p % V == 0) {
          for (int j = 0; j < q; ++j)
            for (int i0 = 0; i0 < p; i0 += V) {
              S* Ar = a + static_cast<int64_t>(j) * p + i0;
              S* Ai = Ar + pq;
              Vec<S> accr = vload(Ar), acci = vload(Ai);
              for (int64_t b = 0; b < g.before; ++b) {
                const Vec<S> xr_ = vload(gr + b * p + i0), xi_ = vload(gi + b * p + i0);
                const Vec<S> vr = vsplat(zr[b * q + j]), vi = vsplat(zi[b * q + j]);
                accr += xr_ * vr + xi_ * vi;
                acci += xi_ * vr - xr_ * vi;
              }
              vstore(Ar, accr);
              vstore(Ai, acci);
            }
          break;
        }
        for (int64_t b = 0; b < g.before; ++b) {
          const S* g_r = gr + b * p;
          const S* g_i = gi + b * p;
          for (int j = 0; j < q; ++j) {
            const S vr = zr[b * q + j], vi = zi[b * q + j];
            S* Ar = a + static_cast<int64_t>(j) * p;
            S* Ai = Ar + pq;
            for (int i = 0; i < p; ++i) cmul_conj_acc(g_r[i], g_i[i], vr, vi, Ar[i], Ai[i]);
          }
        }
        break;
      }
      case AccMode::kGeneric: {
        for (int64_t b = 0; b < g.before; ++b)
          for (int i = 0; i < p; ++i)
            for (int j = 0; j < q; ++j) {
              S* Ar = a + static_cast<int64_t>(i) * q + j;
              S* Ai = Ar + pq;
              for (int64_t r = 0; r < g.rest; ++r)
                cmul_conj_acc(gr[(b * p + i) * g.rest + r], gi[(b * p + i) * g.rest + r],
                              zr[(b * q + j) * g.rest + r], zi[(b * q + j) * g.rest + r], *Ar, *Ai);
            }
        break;
      }
    }
  }

  // Adds this thread's accumulators into `total` (complex p x q per group, row major, as
  // interleaved doubles at offset 2 * sum of the previous groups' p*q).
  void reduce_into(const S* acc, std::vector<double>& total) const {
    int64_t off = 0;
    for (int k = 0; k < pl.m; ++k) {
      const Group& g = pl.g[k];
      const int p = g.p, q = g.q;
      const int64_t pq = static_cast<int64_t>(p) * q;
      const S* a = acc + acc_off[k];
      if (mode[k] == AccMode::kTail) {
        // factor f of the tail, entry (i, j) -> complex slot off + 4 f + 2 i + j
        constexpr int V = kV<S>;
        for (int f = 0; f < g.lane_tail; ++f) {
          const int s = V >> (f + 1);
          for (int l = 0; l < V; ++l) {
            const int i = (l / s) & 1;
            const S* A = a + f * 4 * V;
            total[2 * (off + 4 * f + 2 * i + i)] += A[l];
            total[2 * (off + 4 * f + 2 * i + i) + 1] += A[V + l];
            total[2 * (off + 4 * f + 2 * i + (1 - i))] += A[2 * V + l];
            total[2 * (off + 4 * f + 2 * i + (1 - i)) + 1] += A[3 * V + l];
          }
        }
        off += pq;
        continue;
      }
      for (int i = 0; i < p; ++i)
        for (int j = 0; j < q; ++j) {
          double re = 0, im = 0;
          switch (mode[k]) {
            case AccMode::kLane: {
              const S* A = a + (static_cast<int64_t>(i) * q + j) * 2 * kV<S>;
              for (int v = 0; v < kV<S>; ++v) {
                re += A[v];
                im += A[kV<S> + v];
              }
              break;
            }
            case AccMode::kRow:
              re = a[static_cast<int64_t>(j) * p + i];
              im = a[pq + static_cast<int64_t>(j) * p + i];
              break;
            case AccMode::kGeneric:
              re = a[static_cast<int64_t>(i) * q + j];
              im = a[pq + static_cast<int64_t>(i) * q + j];
              break;
          }
          total[2 * (off + i * q + j)] += re;
          total[2 * (off + i * q + j) + 1] += im;
        }
      off += pq;
    }
  }
};

// total (interleaved doubles, all groups) -> one complex (p, q) tensor per group that needs it.
std::vector<at::Tensor> unpack_group_grads(const Plan& pl, const std::vector<double>& total,
                                           at::ScalarType real_dtype) {
  std::vector<at::Tensor> out(pl.m);
  int64_t off = 0;
  for (int k = 0; k < pl.m; ++k) {
    const int64_t pq = static_cast<int64_t>(pl.g[k].p) * pl.g[k].q;
    if (pl.g[k].need_grad && !pl.g[k].lane_tail) {
      at::Tensor t = at::empty({pl.g[k].p, pl.g[k].q, 2}, at::TensorOptions().dtype(at::kDouble));
      std::copy(total.begin() + 2 * off, total.begin() + 2 * (off + pq), t.data_ptr<double>());
      out[k] = at::view_as_complex(t.to(real_dtype));
    }
    off += pq;
  }
  return out;
}

// Gradients of the lane-tail factors (real pairs (2, 2, 2)), written straight into the per-factor
// result (they need no mapping back through a grouped matrix).
void fill_tail_grads(const HostPlan& hp, const std::vector<double>& total, at::ScalarType real_dtype,
                     const std::vector<bool>& need, std::vector<at::Tensor>& out) {
  const Plan& pl = hp.plan;
  int64_t off = 0;
  for (int k = 0; k < pl.m; ++k) {
    const Group& g = pl.g[k];
    if (g.lane_tail && g.need_grad) {
      for (int f = 0; f < g.lane_tail; ++f) {
        const int idx = hp.ranges[k].first + f;
        if (!need[idx]) continue;
        at::Tensor t = at::empty({2, 2, 2}, at::TensorOptions().dtype(at::kDouble));
        std::copy(total.begin() + 2 * (off + 4 * f), total.begin() + 2 * (off + 4 * f + 4), t.data_ptr<double>());
        out[idx] = t.to(real_dtype);
      }
    }
    off += static_cast<int64_t>(g.p) * g.q;
  }
}

template <typename S>
void deinterleave(const S* __restrict__ src, int64_t n, S* __restrict__ re, S* __restrict__ im) {
  for (int64_t i = 0; i < n; ++i) {
    re[i] = src[2 * i];
    im[i] = src[2 * i + 1];
  }
}

template <typename S>
void interleave(const S* __restrict__ re, const S* __restrict__ im, int64_t n, S* __restrict__ dst) {
  for (int64_t i = 0; i < n; ++i) {
    dst[2 * i] = re[i];
    dst[2 * i + 1] = im[i];
  }
}


// Element-wise math on whole vectors.  The modReLU loops must vectorise explicitly: written per
// element with interleaved inputs, GCC kept them scalar (vsqrtss, vdivss and a branch per
// element), which made them half of the forward's time.
#if KRU_VEC_BYTES > 0
inline Vec<float> vsqrt(const Vec<float>& x) {
#if KRU_VEC_BYTES == 64
  return _mm512_sqrt_ps(x);
#elif KRU_VEC_BYTES == 32 && defined(__AVX__)
  return _mm256_sqrt_ps(x);
#elif KRU_VEC_BYTES == 16 && defined(__SSE2__)
  return _mm_sqrt_ps(x);
#else
  Vec<float> r;
  for (int l = 0; l < kV<float>; ++l) r[l] = __builtin_sqrtf(x[l]);
  return r;
#endif
}
inline Vec<double> vsqrt(const Vec<double>& x) {
#if KRU_VEC_BYTES == 64
  return _mm512_sqrt_pd(x);
#elif KRU_VEC_BYTES == 32 && defined(__AVX__)
  return _mm256_sqrt_pd(x);
#elif KRU_VEC_BYTES == 16 && defined(__SSE2__)
  return _mm_sqrt_pd(x);
#else
  Vec<double> r;
  for (int l = 0; l < kV<double>; ++l) r[l] = __builtin_sqrt(x[l]);
  return r;
#endif
}
#endif
inline float vsqrt(float x) { return std::sqrt(x); }
inline double vsqrt(double x) { return std::sqrt(x); }

// modrelu_fwd / modrelu_bwd of kru_math.h (the CUDA build's per-element code), on T = one scalar
// or one vector: the same operations in the same order, so both builds agree to the rounding of
// FMA contraction.  The selects are `mask ? a : b` on comparison masks (GCC/clang vector
// conditionals; plain ternaries for scalars).
template <typename T>
inline void modrelu_fwd_t(T ar, T ai, T b, T eps, T& hr, T& hi) {
  const T zero{};
  const T a2 = ar * ar + ai * ai;
  const T mag = vsqrt(a2 + eps);
  const T act = mag + b;
  const T s = ((act > zero) & (a2 > zero)) ? act / mag : zero;
  hr = ar * s;
  hi = ai * s;
}

template <typename T>
inline void modrelu_bwd_t(T ar, T ai, T b, T eps, T gr, T gi, T one, T& gar, T& gai, T& gb) {
  const T zero{};
  const T a2 = ar * ar + ai * ai;
  const T mag = vsqrt(a2 + eps);
  const T inv = one / mag;
  const T act = mag + b;
  const T on = ((act > zero) & (a2 > zero)) ? one : zero;
  const T s = on * act * inv;
  const T dot = ar * gr + ai * gi;
  const T c = -on * b * dot * inv * inv * inv;
  gar = s * gr + ar * c;
  gai = s * gi + ai * c;
  gb = on * dot * inv;
}

// One forward step: a = W h + u_t, h = modReLU(a) into the planar state and the interleaved
// output row.  (wr, wi) hold W h on entry, (ur, ui) the planar input projection u_t.
template <typename S>
void step_forward(const S* __restrict__ wr, const S* __restrict__ wi, const S* __restrict__ ur,
                  const S* __restrict__ ui, const S* __restrict__ bias, S eps, int64_t N,
                  S* __restrict__ hr, S* __restrict__ hi, S* __restrict__ hs) {
  constexpr int V = kV<S>;
  const Vec<S> e = vsplat(eps);
  int64_t n = 0;
  for (; n + V <= N; n += V) {
    Vec<S> r, i;
    modrelu_fwd_t<Vec<S>>(vload(wr + n) + vload(ur + n), vload(wi + n) + vload(ui + n), vload(bias + n), e, r, i);
    vstore(hr + n, r);
    vstore(hi + n, i);
  }
  for (; n < N; ++n) modrelu_fwd_t<S>(wr[n] + ur[n], wi[n] + ui[n], bias[n], eps, hr[n], hi[n]);
  interleave(hr, hi, N, hs);
}

// One backward step.  The pre-activation a_t = W h_{t-1} + u_t is recomputed (wr, wi hold
// W h_{t-1}) rather than stored by the forward: that saves writing and reading a (B, T, N)
// tensor, which costs more than the one extra factor application it takes here.
// dL/dh_t = grad_hs_t + carry (carry = W^H dL/da_{t+1}); dL/da_t -> (gar, gai) planar;
// gb += dL/db.  ghs (interleaved) may be null (no gradient for the states: zero); scratch: 2N.
template <typename S>
void step_backward(const S* __restrict__ wr, const S* __restrict__ wi, const S* __restrict__ ur,
                   const S* __restrict__ ui, const S* __restrict__ ghs, const S* __restrict__ cr,
                   const S* __restrict__ ci, const S* __restrict__ bias, S eps, int64_t N,
                   S* __restrict__ gar, S* __restrict__ gai, S* __restrict__ gb, S* __restrict__ scratch) {
  constexpr int V = kV<S>;
  S* dr = scratch;  // dL/dh_t
  S* di = scratch + N;
  if (ghs != nullptr) {
    deinterleave(ghs, N, dr, di);
    for (int64_t n = 0; n < N; ++n) {
      dr[n] += cr[n];
      di[n] += ci[n];
    }
  } else {
    std::memcpy(dr, cr, N * sizeof(S));
    std::memcpy(di, ci, N * sizeof(S));
  }
  const Vec<S> e = vsplat(eps), one = vsplat(S(1));
  int64_t n = 0;
  for (; n + V <= N; n += V) {
    Vec<S> r, i, db;
    modrelu_bwd_t<Vec<S>>(vload(wr + n) + vload(ur + n), vload(wi + n) + vload(ui + n), vload(bias + n), e,
                          vload(dr + n), vload(di + n), one, r, i, db);
    vstore(gar + n, r);
    vstore(gai + n, i);
    vstore(gb + n, vload(gb + n) + db);
  }
  for (; n < N; ++n) {
    S r, i, db;
    modrelu_bwd_t<S>(wr[n] + ur[n], wi[n] + ui[n], bias[n], eps, dr[n], di[n], S(1), r, i, db);
    gar[n] = r;
    gai[n] = i;
    gb[n] += db;
  }
}

// Applies the groups in order to a planar vector of length n_in; the result lands in (yr, yi).
// buf holds two ping-pong buffers of 2 * max_sz scalars each.
template <typename S>
void forward_chain(const CpuKron<S>& kr, const S* xr, const S* xi, S* yr, S* yi, S* buf) {
  walk_groups(kr.pl, xr, xi, yr, yi, buf, buf + 2 * kr.pl.max_sz,
              [&](int k, const S* sr, const S* si, S* dr, S* di) { kr.apply(k, false, sr, si, dr, di); });
}

// Backward through the groups for one vector.  ga: gradient at the output (length n_out);
// z: the group inputs z_0 = x, z_k in zbuf[k] (2 * max_sz each, k >= 1), needed only when
// `with_grads`; writes W^H ga to (outr, outi) when they are non-null; buf: two ping-pong buffers.
template <typename S>
void backward_chain(const CpuKron<S>& kr, const S* gar, const S* gai, const S* xr, const S* xi,
                    const S* zbuf, bool with_grads, S* outr, S* outi, S* buf, S* acc) {
  walk_groups_backward(
      kr.pl, gar, gai, xr, xi, zbuf, with_grads, outr, outi, buf, buf + 2 * kr.pl.max_sz,
      [&](int k, const S* sr, const S* si, const S* zr, const S* zi, S* dr, S* di) {
        if (kr.pl.g[k].lane_tail) {  // fused adjoint + gradient of the lane tail
          kr.tail_backward(k, sr, si, zr, zi, dr, di, acc);
          return true;
        }
        kr.contract(k, sr, si, zr, zi, acc);
        return false;
      },
      [&](int k, const S* sr, const S* si, S* dr, S* di) { kr.apply(k, true, sr, si, dr, di); });
}

// z_k = G_{k-1} ... G_0 x for k = 1..m-1 into zbuf[k].
template <typename S>
void prefix_chain(const CpuKron<S>& kr, const S* xr, const S* xi, S* zbuf) {
  walk_prefix(kr.pl, xr, xi, zbuf,
              [&](int k, const S* sr, const S* si, S* dr, S* di) { kr.apply(k, false, sr, si, dr, di); });
}

// -------------------------------------------------------------------------------------------
// kron_matvec

int64_t lane_width(at::TensorList factors) {
  return factors.empty() ? 0 : factors[0].scalar_type() == at::kDouble ? kV<double> : kV<float>;
}

at::Tensor kron_matvec_cpu(const at::Tensor& x_in, at::TensorList factors) {
  check_pair(x_in, "x", 3);
  HostPlan hp = make_plan(factors, {}, kV<float>, lane_width(factors));
  const Plan& pl = hp.plan;
  TORCH_CHECK(x_in.size(1) == pl.n_in, "kruzoo.kron_matvec: x has ", x_in.size(1),
              " columns but the factors need ", pl.n_in);
  TORCH_CHECK(x_in.scalar_type() == factors[0].scalar_type(),
              "kruzoo.kron_matvec: x and factors must share a dtype");
  const at::Tensor x = x_in.contiguous();
  const int64_t rows = x.size(0);
  at::Tensor y = at::empty({rows, pl.n_out, 2}, x.options());
  const unsigned csr = FpScope::caller();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kruzoo_kron_matvec", [&] {
    using S = scalar_t;
    CpuKron<S> kr(pl, hp.packed.data_ptr<S>());
    const S* xp = x.data_ptr<S>();
    S* yp = y.data_ptr<S>();
    at::parallel_for(0, rows, 8, [&](int64_t r0, int64_t r1) {
      FpScope fp(csr);
      const int64_t M = pl.max_sz;
      std::vector<S> w(2 * pl.n_in + 2 * pl.n_out + 4 * M);
      S* xr = w.data();
      S* yr = xr + 2 * pl.n_in;
      S* buf = yr + 2 * pl.n_out;
      for (int64_t r = r0; r < r1; ++r) {
        deinterleave(xp + r * 2 * pl.n_in, pl.n_in, xr, xr + pl.n_in);
        forward_chain(kr, xr, xr + pl.n_in, yr, yr + pl.n_out, buf);
        interleave(yr, yr + pl.n_out, pl.n_out, yp + r * 2 * pl.n_out);
      }
    });
  });
  return y;
}

std::tuple<at::Tensor, std::vector<at::Tensor>> kron_matvec_backward_cpu(
    const at::Tensor& gy_in, const at::Tensor& x_in, at::TensorList factors, bool need_x,
    const c10::List<bool>& needs_list) {
  const std::vector<bool> factor_needs_grad = to_vec(needs_list);
  HostPlan hp = make_plan(factors, factor_needs_grad, kV<float>, lane_width(factors));
  const Plan& pl = hp.plan;
  const at::Tensor x = x_in.contiguous();
  const at::Tensor gy = gy_in.contiguous();
  const int64_t rows = x.size(0);
  TORCH_CHECK(gy.size(0) == rows && gy.size(1) == pl.n_out, "kruzoo: grad_y has shape ",
              gy.sizes());
  at::Tensor gx = need_x ? at::empty_like(x) : at::empty({0}, x.options());
  const bool want_grads = any_of(factor_needs_grad);
  // One dense factor: its gradient is one GEMM, far faster than per-row outer products.
  const bool gemm_grad = want_grads && pl.m == 1;
  const bool loop_grads = want_grads && !gemm_grad;
  std::vector<at::Tensor> group_grads(pl.m);
  std::vector<double> tail_total;
  const unsigned csr = FpScope::caller();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kruzoo_kron_matvec_backward", [&] {
    using S = scalar_t;
    CpuKron<S> kr(pl, hp.packed.data_ptr<S>());
    const S* xp = x.data_ptr<S>();
    const S* gp = gy.data_ptr<S>();
    S* gxp = need_x ? gx.data_ptr<S>() : nullptr;
    std::vector<double> total(loop_grads ? 2 * kr.acc_size : 0, 0.0);
    std::mutex mu;
    if (need_x || loop_grads) {
      at::parallel_for(0, rows, 8, [&](int64_t r0, int64_t r1) {
        FpScope fp(csr);
        const int64_t M = pl.max_sz;
        std::vector<S> w(2 * pl.n_in + 2 * pl.n_out + 2 * pl.n_in + 4 * M +
                         (loop_grads ? 2 * M * pl.m : 0));
        std::vector<S> acc(loop_grads ? kr.acc_size : 0, S(0));
        S* xr = w.data();
        S* gr = xr + 2 * pl.n_in;
        S* outr = gr + 2 * pl.n_out;
        S* buf = outr + 2 * pl.n_in;
        S* zbuf = buf + 4 * M;
        for (int64_t r = r0; r < r1; ++r) {
          deinterleave(gp + r * 2 * pl.n_out, pl.n_out, gr, gr + pl.n_out);
          if (loop_grads) {
            deinterleave(xp + r * 2 * pl.n_in, pl.n_in, xr, xr + pl.n_in);
            prefix_chain(kr, xr, xr + pl.n_in, zbuf);
          }
          backward_chain(kr, gr, gr + pl.n_out, xr, xr + pl.n_in, zbuf, loop_grads,
                         need_x ? outr : nullptr, outr + pl.n_in, buf, acc.data());
          if (need_x) interleave(outr, outr + pl.n_in, pl.n_in, gxp + r * 2 * pl.n_in);
        }
        if (loop_grads) {
          std::lock_guard<std::mutex> lock(mu);
          kr.reduce_into(acc.data(), total);
        }
      });
    }
    if (loop_grads) {
      group_grads = unpack_group_grads(pl, total, x.scalar_type());
      tail_total = std::move(total);
    }
  });
  if (gemm_grad) {
    const at::Tensor gc = at::view_as_complex(gy);
    const at::Tensor xc = at::view_as_complex(x);
    group_grads[0] = at::mm(gc.t(), xc.conj().resolve_conj());
  }
  std::vector<at::Tensor> gf = map_group_grads(hp, factors, group_grads, factor_needs_grad);
  if (loop_grads) fill_tail_grads(hp, tail_total, x.scalar_type(), factor_needs_grad, gf);
  return {gx, gf};
}

// -------------------------------------------------------------------------------------------
// kru_recurrence

struct RecDims {
  int64_t B, T, N;
};

RecDims check_recurrence(const at::Tensor& ux, const at::Tensor& h0, const Plan& pl,
                         const at::Tensor& bias, at::TensorList factors) {
  check_pair(ux, "ux", 4);
  check_pair(h0, "h0", 3);
  const RecDims d{ux.size(0), ux.size(1), ux.size(2)};
  TORCH_CHECK(h0.size(0) == d.B && h0.size(1) == d.N, "kruzoo.kru_recurrence: h0 has shape ",
              h0.sizes(), " but ux is ", ux.sizes());
  TORCH_CHECK(pl.n_in == d.N && pl.n_out == d.N,
              "kruzoo.kru_recurrence: the factors map ", pl.n_in, " -> ", pl.n_out,
              " but the state has N = ", d.N, " (both products must equal N)");
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == d.N, "kruzoo.kru_recurrence: bias must be (N,), got ",
              bias.sizes());
  const auto dt = ux.scalar_type();
  TORCH_CHECK(h0.scalar_type() == dt && bias.scalar_type() == dt && factors[0].scalar_type() == dt,
              "kruzoo.kru_recurrence: ux, h0, factors and bias must share one real dtype (got ux ",
              dt, ", h0 ", h0.scalar_type(), ", bias ", bias.scalar_type(), ", factors ",
              factors[0].scalar_type(), ")");
  const auto dev = ux.device();
  TORCH_CHECK(h0.device() == dev && bias.device() == dev && factors[0].device() == dev,
              "kruzoo.kru_recurrence: all inputs must be on one device");
  return d;
}

// The last state h_{T-1} (B, N, 2), as its own output so that a loss on it alone gives the backward
// no (B, T, N) gradient to fill with zeros and read (T = 0: h0).
at::Tensor last_state(const at::Tensor& hs, const at::Tensor& h0) {
  return hs.size(1) > 0 ? hs.select(1, hs.size(1) - 1).clone() : h0.clone();
}

struct RecGrads {
  bool has_ghs, has_glast;
  at::Tensor ghs, glast;  // contiguous when present
};

// The backward's incoming gradients: for all states (B, T, N, 2) and/or the last one (B, N, 2);
// either may be absent (undefined or None), meaning zero.
RecGrads check_rec_grads(const c10::optional<at::Tensor>& ghs, const c10::optional<at::Tensor>& glast,
                         const at::Tensor& ux, const at::Tensor& hs, const at::Tensor& h0) {
  RecGrads r{ghs.has_value() && ghs->defined(), glast.has_value() && glast->defined(), {}, {}};
  TORCH_CHECK(hs.sizes() == ux.sizes(), "kruzoo: hs / ux shapes differ");
  if (r.has_ghs) {
    TORCH_CHECK(ghs->sizes() == ux.sizes(), "kruzoo: grad_hs has shape ", ghs->sizes(), ", expected ", ux.sizes());
    r.ghs = ghs->contiguous();
  }
  if (r.has_glast) {
    TORCH_CHECK(glast->sizes() == h0.sizes(), "kruzoo: grad_last has shape ", glast->sizes(), ", expected ",
                h0.sizes());
    r.glast = glast->contiguous();
  }
  return r;
}

// Where a step's input projection u_t comes from: the op's ux tensor (B, T, N, 2), or, for the
// fused-projection ops, u_t = W x_t computed in the step from x (B, T, d) and the real (2N, d)
// weight W (rows interleaved re, im: the layout of ComplexInputProjection), packed planar as
// (d, N) re and im blocks.  Computing u_t in the step saves writing and reading the (B, T, N)
// tensor ux and its gradient: on pixel MNIST 160 MB each, memory traffic that cost as much as
// the recurrence's arithmetic on a 2-core AVX2 machine.
template <typename S>
struct RecInput {
  const S* ux = nullptr;                       // interleaved (B, T, N, 2), or null
  const S* x = nullptr;                        // (B, T, d) when ux is null
  const S* wr = nullptr;                       // (d, N)
  const S* wi = nullptr;                       // (d, N)
  int64_t d = 0, T = 0, N = 0;

  void load(int64_t b, int64_t t, S* __restrict__ ur, S* __restrict__ ui) const {
    if (ux != nullptr) return deinterleave(ux + (b * T + t) * 2 * N, N, ur, ui);
    const S* xt = x + (b * T + t) * d;
    for (int64_t n = 0; n < N; ++n) {
      ur[n] = xt[0] * wr[n];
      ui[n] = xt[0] * wi[n];
    }
    for (int64_t k = 1; k < d; ++k) {
      const S s = xt[k];
      const S* __restrict__ rk = wr + k * N;
      const S* __restrict__ ik = wi + k * N;
      for (int64_t n = 0; n < N; ++n) {
        ur[n] += s * rk[n];
        ui[n] += s * ik[n];
      }
    }
  }
};

// The planar (d, N) re and im blocks of a (2N, d) projection weight.
at::Tensor pack_projection(const at::Tensor& w, int64_t N) {
  // w[2n + c, k] -> out[c][k][n]
  return w.contiguous().view({N, 2, w.size(1)}).permute({1, 2, 0}).contiguous();
}

// The forward of both recurrence ops: hs (B, T, N, 2) from the input, h0 and the plan.
template <typename S>
void recurrence_forward(const CpuKron<S>& kr, const RecInput<S>& in, int64_t B, const S* h0p, const S* bp,
                        S e, S* hsp, unsigned csr) {
  const Plan& pl = kr.pl;
  const int64_t N = in.N, T = in.T;
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    FpScope fp(csr);
    const int64_t M = pl.max_sz;
    std::vector<S> w(6 * N + 4 * M);
    S* h = w.data();  // planar state: re [0, N), im [N, 2N)
    S* a = h + 2 * N;
    S* u = a + 2 * N;
    S* buf = u + 2 * N;
    for (int64_t b = b0; b < b1; ++b) {
      deinterleave(h0p + b * 2 * N, N, h, h + N);
      for (int64_t t = 0; t < T; ++t) {
        forward_chain(kr, h, h + N, a, a + N, buf);
        in.load(b, t, u, u + N);
        step_forward(a, a + N, u, u + N, bp, e, N, h, h + N, hsp + (b * T + t) * 2 * N);
      }
    }
  });
}

// What the backward of a recurrence op writes besides the factor and bias gradients.
template <typename S>
struct RecOutput {
  S* gux = nullptr;        // ux op: dL/dux (B, T, N, 2)
  S* gx = nullptr;         // projection op, when x needs it: dL/dx (B, T, d)
  bool need_w = false;     // projection op: accumulate dL/dW into gw_total
  S* gh0 = nullptr;        // (B, N, 2)
};

// BPTT of both recurrence ops.  Profiling showed its time at the loads of the grad_hs / ux / hs
// rows (memory bound); explicit software prefetches moved the stall onto the prefetches without a
// measurable gain, so there are none.
template <typename S>
void recurrence_backward(const CpuKron<S>& kr, const RecInput<S>& in, int64_t B, const S* ghp, const S* glp,
                         const S* hsp, const S* h0p, const S* bp, S e, bool loop_grads, const RecOutput<S>& out,
                         std::vector<double>& total, std::vector<double>& gb_total,
                         std::vector<double>& gw_total, unsigned csr) {
  const Plan& pl = kr.pl;
  const int64_t N = in.N, T = in.T, D = in.d;
  std::mutex mu;
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    FpScope fp(csr);
    const int64_t M = pl.max_sz;
    std::vector<S> w(12 * N + 4 * M + 2 * M * pl.m);
    std::vector<S> acc(loop_grads ? kr.acc_size : 0, S(0));
    std::vector<S> gb(N, S(0));
    std::vector<S> gw(out.need_w ? 2 * D * N : 0, S(0));  // planar (d, N) re, then im
    S* carry = w.data();   // W^H dL/da_{t+1}
    S* ga = carry + 2 * N;  // dL/da_t
    S* hp_ = ga + 2 * N;   // h_{t-1} (input of the first group)
    S* wh = hp_ + 2 * N;   // W h_{t-1}
    S* u = wh + 2 * N;     // u_t
    S* scratch = u + 2 * N;
    S* buf = scratch + 2 * N;
    S* zbuf = buf + 4 * M;  // inputs of groups 1..m-1
    for (int64_t b = b0; b < b1; ++b) {
      // dL/dh_{T-1} = grad_hs[T-1] + grad_last: grad_last enters as the initial carry.
      if (glp != nullptr) {
        deinterleave(glp + b * 2 * N, N, carry, carry + N);
      } else {
        std::fill(carry, carry + 2 * N, S(0));
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t base = (b * T + t) * 2 * N;
        const S* prev = t > 0 ? hsp + base - 2 * N : h0p + b * 2 * N;
        deinterleave(prev, N, hp_, hp_ + N);
        prefix_chain(kr, hp_, hp_ + N, zbuf);
        const S* zl = pl.m == 1 ? hp_ : zbuf + 2 * M * (pl.m - 1);
        const int64_t zl_im = pl.m == 1 ? N : M;
        kr.apply(pl.m - 1, false, zl, zl + zl_im, wh, wh + N);
        in.load(b, t, u, u + N);
        step_backward(wh, wh + N, u, u + N, ghp != nullptr ? ghp + base : nullptr, carry, carry + N, bp, e, N,
                      ga, ga + N, gb.data(), scratch);
        if (out.gux != nullptr) interleave(ga, ga + N, N, out.gux + base);
        if (in.x != nullptr) {
          const S* xt = in.x + (b * T + t) * D;
          for (int64_t k = 0; k < D && out.need_w; ++k) {
            const S xk = xt[k];
            S* __restrict__ r = gw.data() + k * N;
            S* __restrict__ i = gw.data() + (D + k) * N;
            for (int64_t n = 0; n < N; ++n) {
              r[n] += xk * ga[n];
              i[n] += xk * ga[N + n];
            }
          }
          for (int64_t k = 0; k < D && out.gx != nullptr; ++k) {
            const S* __restrict__ rk = in.wr + k * N;
            const S* __restrict__ ik = in.wi + k * N;
            S dot = 0;
            for (int64_t n = 0; n < N; ++n) dot += rk[n] * ga[n] + ik[n] * ga[N + n];
            out.gx[(b * T + t) * D + k] = dot;
          }
        }
        backward_chain(kr, ga, ga + N, hp_, hp_ + N, zbuf, loop_grads, carry, carry + N, buf, acc.data());
      }
      interleave(carry, carry + N, N, out.gh0 + b * 2 * N);
    }
    std::lock_guard<std::mutex> lock(mu);
    if (loop_grads) kr.reduce_into(acc.data(), total);
    for (int64_t n = 0; n < N; ++n) gb_total[n] += gb[n];
    for (size_t i = 0; i < gw.size(); ++i) gw_total[i] += gw[i];
  });
}

at::Tensor doubles_to(const std::vector<double>& v, at::IntArrayRef shape, at::ScalarType dtype) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(at::kDouble));
  std::copy(v.begin(), v.end(), t.data_ptr<double>());
  return t.view(shape).to(dtype);
}

// The shared body of both backward ops: factor and bias gradients, gh0, and the input's.
struct RecBackwardResult {
  at::Tensor gh0, gbias, gw_planar;  // gw_planar: (2, d, N) doubles -> dtype, or undefined
  std::vector<at::Tensor> gf;
};

RecBackwardResult recurrence_backward_cpu(const RecGrads& rg, const at::Tensor& ux_or_x, bool proj,
                                          const at::Tensor& wpk, const at::Tensor& hs, const at::Tensor& h0,
                                          at::TensorList factors, const at::Tensor& bias, double eps,
                                          const std::vector<bool>& factor_needs_grad, const RecDims& d,
                                          at::Tensor* gux, at::Tensor* gx, bool need_w) {
  HostPlan hp = make_plan(factors, factor_needs_grad, kV<float>, lane_width(factors));
  const Plan& pl = hp.plan;
  RecBackwardResult res;
  res.gh0 = at::empty_like(h0);
  const bool want_grads = any_of(factor_needs_grad);
  // One dense factor: its gradient is a single GEMM over all (b, t) after the loop (it needs
  // dL/da for every step, i.e. the ux gradient: the projection op computes it then).
  const bool gemm_grad = want_grads && pl.m == 1;
  const bool loop_grads = want_grads && !gemm_grad;
  at::Tensor ga_all;  // dL/da (B, T, N, 2): the ux gradient, or the projection op's temporary
  if (!proj) {
    *gux = at::empty_like(ux_or_x);
    ga_all = *gux;
  } else if (gemm_grad) {
    ga_all = at::empty_like(hs);
  }
  std::vector<at::Tensor> group_grads(pl.m);
  std::vector<double> tail_total;
  const unsigned csr = FpScope::caller();
  const int64_t D = proj ? ux_or_x.size(2) : 0;
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "kruzoo_kru_recurrence_backward", [&] {
    using S = scalar_t;
    CpuKron<S> kr(pl, hp.packed.data_ptr<S>());
    RecInput<S> in;
    in.T = d.T;
    in.N = d.N;
    if (proj) {
      in.x = ux_or_x.data_ptr<S>();
      in.wr = wpk.data_ptr<S>();
      in.wi = in.wr + D * d.N;
      in.d = D;
    } else {
      in.ux = ux_or_x.data_ptr<S>();
    }
    RecOutput<S> out;
    out.gux = ga_all.defined() ? ga_all.data_ptr<S>() : nullptr;
    out.gx = (gx != nullptr && gx->defined() && gx->numel() > 0) ? gx->data_ptr<S>() : nullptr;
    out.need_w = need_w;
    out.gh0 = res.gh0.data_ptr<S>();
    std::vector<double> total(loop_grads ? 2 * kr.acc_size : 0, 0.0);
    std::vector<double> gb_total(d.N, 0.0);
    std::vector<double> gw_total(need_w ? 2 * D * d.N : 0, 0.0);
    recurrence_backward(kr, in, d.B, rg.has_ghs ? rg.ghs.data_ptr<S>() : nullptr,
                        rg.has_glast ? rg.glast.data_ptr<S>() : nullptr, hs.data_ptr<S>(), h0.data_ptr<S>(),
                        bias.data_ptr<S>(), static_cast<S>(eps), loop_grads, out, total, gb_total, gw_total, csr);
    if (loop_grads) {
      group_grads = unpack_group_grads(pl, total, hs.scalar_type());
      tail_total = std::move(total);
    }
    res.gbias = doubles_to(gb_total, {d.N}, hs.scalar_type());
    if (need_w) res.gw_planar = doubles_to(gw_total, {2, D, d.N}, hs.scalar_type());
  });
  if (gemm_grad) {
    // dL/dW = sum_{b,t} dL/da_t (h_{t-1})^H: one complex GEMM over all (b, t).
    const at::Tensor hsc = at::view_as_complex(hs);
    const at::Tensor prev = at::cat({at::view_as_complex(h0).unsqueeze(1), hsc.narrow(1, 0, d.T - 1)}, 1);
    const at::Tensor gc = at::view_as_complex(ga_all);
    group_grads[0] = at::mm(gc.reshape({d.B * d.T, d.N}).t(),
                            prev.reshape({d.B * d.T, d.N}).conj().resolve_conj());
  }
  res.gf = map_group_grads(hp, factors, group_grads, factor_needs_grad);
  if (loop_grads) fill_tail_grads(hp, tail_total, hs.scalar_type(), factor_needs_grad, res.gf);
  return res;
}

std::tuple<at::Tensor, at::Tensor> kru_recurrence_cpu(const at::Tensor& ux_in, const at::Tensor& h0_in,
                                                      at::TensorList factors, const at::Tensor& bias_in,
                                                      double eps) {
  HostPlan hp = make_plan(factors, {}, kV<float>, lane_width(factors));
  const RecDims d = check_recurrence(ux_in, h0_in, hp.plan, bias_in, factors);
  const at::Tensor ux = ux_in.contiguous(), h0 = h0_in.contiguous(), bias = bias_in.contiguous();
  at::Tensor hs = at::empty({d.B, d.T, d.N, 2}, ux.options());
  AT_DISPATCH_FLOATING_TYPES(ux.scalar_type(), "kruzoo_kru_recurrence", [&] {
    using S = scalar_t;
    CpuKron<S> kr(hp.plan, hp.packed.data_ptr<S>());
    RecInput<S> in;
    in.ux = ux.data_ptr<S>();
    in.T = d.T;
    in.N = d.N;
    recurrence_forward(kr, in, d.B, h0.data_ptr<S>(), bias.data_ptr<S>(), static_cast<S>(eps), hs.data_ptr<S>(),
                       FpScope::caller());
  });
  return {hs, last_state(hs, h0)};
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>, at::Tensor> kru_recurrence_backward_cpu(
    const c10::optional<at::Tensor>& ghs_in, const c10::optional<at::Tensor>& glast_in,
    const at::Tensor& ux_in, const at::Tensor& hs_in, const at::Tensor& h0_in, at::TensorList factors,
    const at::Tensor& bias_in, double eps, const c10::List<bool>& needs_list) {
  const std::vector<bool> factor_needs_grad = to_vec(needs_list);
  HostPlan hp = make_plan(factors, factor_needs_grad, kV<float>, lane_width(factors));
  const RecDims d = check_recurrence(ux_in, h0_in, hp.plan, bias_in, factors);
  const RecGrads rg = check_rec_grads(ghs_in, glast_in, ux_in, hs_in, h0_in);
  at::Tensor gux;
  RecBackwardResult r = recurrence_backward_cpu(rg, ux_in.contiguous(), false, at::Tensor(), hs_in.contiguous(),
                                                h0_in.contiguous(), factors, bias_in.contiguous(), eps,
                                                factor_needs_grad, d, &gux, nullptr, false);
  return {gux, r.gh0, r.gf, r.gbias};
}

// ---- the fused-projection ops: x (B, T, d) and the real (2N, d) weight W instead of ux = W x.

RecDims check_projection(const at::Tensor& x, const at::Tensor& w, const at::Tensor& h0, const Plan& pl,
                         const at::Tensor& bias, at::TensorList factors) {
  TORCH_CHECK(x.dim() == 3, "kruzoo.kru_recurrence_proj: x must be (B, T, d), got ", x.sizes());
  TORCH_CHECK(w.dim() == 2 && w.size(1) == x.size(2) && w.size(0) % 2 == 0,
              "kruzoo.kru_recurrence_proj: the weight must be (2N, d) with d = ", x.size(2), ", got ", w.sizes());
  TORCH_CHECK(x.size(2) > 0, "kruzoo.kru_recurrence_proj: x has no features (d = 0)");
  TORCH_CHECK(x.scalar_type() == w.scalar_type() && x.device() == w.device(),
              "kruzoo.kru_recurrence_proj: x and the weight must share dtype and device");
  // The remaining checks are the ux op's, on a (B, T, N, 2) shape.
  const at::Tensor like = at::empty({1, 1, 1, 2}, x.options()).expand({x.size(0), x.size(1), w.size(0) / 2, 2});
  return check_recurrence(like, h0, pl, bias, factors);
}

std::tuple<at::Tensor, at::Tensor> kru_recurrence_proj_cpu(const at::Tensor& x_in, const at::Tensor& w_in,
                                                           const at::Tensor& h0_in, at::TensorList factors,
                                                           const at::Tensor& bias_in, double eps) {
  HostPlan hp = make_plan(factors, {}, kV<float>, lane_width(factors));
  const RecDims d = check_projection(x_in, w_in, h0_in, hp.plan, bias_in, factors);
  const at::Tensor x = x_in.contiguous(), h0 = h0_in.contiguous(), bias = bias_in.contiguous();
  const at::Tensor wpk = pack_projection(w_in, d.N);
  at::Tensor hs = at::empty({d.B, d.T, d.N, 2}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kruzoo_kru_recurrence_proj", [&] {
    using S = scalar_t;
    CpuKron<S> kr(hp.plan, hp.packed.data_ptr<S>());
    RecInput<S> in;
    in.x = x.data_ptr<S>();
    in.wr = wpk.data_ptr<S>();
    in.wi = in.wr + x.size(2) * d.N;
    in.d = x.size(2);
    in.T = d.T;
    in.N = d.N;
    recurrence_forward(kr, in, d.B, h0.data_ptr<S>(), bias.data_ptr<S>(), static_cast<S>(eps), hs.data_ptr<S>(),
                       FpScope::caller());
  });
  return {hs, last_state(hs, h0)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, std::vector<at::Tensor>, at::Tensor> kru_recurrence_proj_backward_cpu(
    const c10::optional<at::Tensor>& ghs_in, const c10::optional<at::Tensor>& glast_in, const at::Tensor& x_in,
    const at::Tensor& w_in, const at::Tensor& hs_in, const at::Tensor& h0_in, at::TensorList factors,
    const at::Tensor& bias_in, double eps, bool need_x, bool need_w, const c10::List<bool>& needs_list) {
  const std::vector<bool> factor_needs_grad = to_vec(needs_list);
  HostPlan hp = make_plan(factors, factor_needs_grad, kV<float>, lane_width(factors));
  const RecDims d = check_projection(x_in, w_in, h0_in, hp.plan, bias_in, factors);
  const RecGrads rg = check_rec_grads(ghs_in, glast_in, hs_in, hs_in, h0_in);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor wpk = pack_projection(w_in, d.N);
  at::Tensor gx = need_x ? at::empty_like(x) : at::empty({0}, x.options());
  RecBackwardResult r = recurrence_backward_cpu(rg, x, true, wpk, hs_in.contiguous(), h0_in.contiguous(), factors,
                                                bias_in.contiguous(), eps, factor_needs_grad, d, nullptr, &gx,
                                                need_w);
  // (2, d, N) planar -> the weight's (2N, d) layout: w[2n + c, k] = planar[c][k][n]
  at::Tensor gw = need_w ? r.gw_planar.permute({2, 0, 1}).reshape({2 * d.N, x.size(2)}).contiguous()
                         : at::empty({0}, x.options());
  return {gx, gw, r.gh0, r.gf, r.gbias};
}

}  // namespace

std::string build_info() {
  std::string s = std::string("isa=") + kIsa + " vec_bytes=" + std::to_string(KRU_VEC_BYTES) +
                  " float_lanes=" + std::to_string(kV<float>) + " double_lanes=" + std::to_string(kV<double>);
#if defined(__clang__)
  s += " compiler=clang-" __clang_version__;
#elif defined(__GNUC__)
  s += " compiler=gcc-" __VERSION__;
#elif defined(_MSC_VER)
  s += " compiler=msvc-" + std::to_string(_MSC_VER);
#endif
  return s;
}

}  // namespace kru

// The schema: real-pair tensors (view_as_real of complex), float32 or float64.
//  kron_matvec: x (M, Q, 2), factors (p_i, q_i, 2) -> y (M, P, 2)
//  kru_recurrence: ux (B, T, N, 2), h0 (B, N, 2), factors, bias (N,) -> hs (B, T, N, 2) and the
//  last state (B, N, 2); its backward takes either gradient or both (None = zero).
//  The backward ops return an empty tensor for every factor whose flag is false.
TORCH_LIBRARY(kruzoo, m) {
  // "isa=avx2 vec_bytes=32 float_lanes=8 double_lanes=4 compiler=..." : what this build runs.
  m.def("build_info() -> str", &kru::build_info);
  m.def("kron_matvec(Tensor x, Tensor[] factors) -> Tensor");
  m.def(
      "kron_matvec_backward(Tensor grad_y, Tensor x, Tensor[] factors, bool need_x, "
      "bool[] factor_needs_grad) -> (Tensor, Tensor[])");
  m.def(
      "kru_recurrence(Tensor ux, Tensor h0, Tensor[] factors, Tensor bias, float eps) "
      "-> (Tensor, Tensor)");
  m.def(
      "kru_recurrence_backward(Tensor? grad_hs, Tensor? grad_last, Tensor ux, Tensor hs, Tensor h0, "
      "Tensor[] factors, Tensor bias, float eps, bool[] factor_needs_grad) "
      "-> (Tensor, Tensor, Tensor[], Tensor)");
  // The same recurrence with the input projection ux = W x fused into each step (CPU only):
  // x (B, T, d), w (2N, d) real (rows interleaved re, im).
  m.def("kru_recurrence_proj(Tensor x, Tensor w, Tensor h0, Tensor[] factors, Tensor bias, float eps) -> (Tensor, Tensor)");
  m.def(
      "kru_recurrence_proj_backward(Tensor? grad_hs, Tensor? grad_last, Tensor x, Tensor w, Tensor hs, "
      "Tensor h0, Tensor[] factors, Tensor bias, float eps, bool need_x, bool need_w, bool[] factor_needs_grad) "
      "-> (Tensor, Tensor, Tensor, Tensor[], Tensor)");
}

TORCH_LIBRARY_IMPL(kruzoo, CPU, m) {
  m.impl("kron_matvec", &kru::kron_matvec_cpu);
  m.impl("kron_matvec_backward", &kru::kron_matvec_backward_cpu);
  m.impl("kru_recurrence", &kru::kru_recurrence_cpu);
  m.impl("kru_recurrence_backward", &kru::kru_recurrence_backward_cpu);
  m.impl("kru_recurrence_proj", &kru::kru_recurrence_proj_cpu);
  m.impl("kru_recurrence_proj_backward", &kru::kru_recurrence_proj_backward_cpu);
}
