// CUDA kernels of the kruzoo ops (registered for the CUDA dispatch key; the schema lives in
// kru_cpu.cpp, which the CUDA build compiles too).
//
// Persistent design: one thread block owns one sequence (recurrence) or a strided set of rows
// (matvec) for the whole call.  The hidden state and the intermediates of W h live in shared
// memory when they fit (N = 512 float: ~20 KiB forward), else in a per-block global scratch
// (L2 resident); the time loop runs inside the kernel, so a whole sequence costs one launch.
// The per-element math (modReLU forward/backward, complex multiply-accumulate) is the same
// kru_math.h code the CPU build runs and tests.
//
// Factor gradients: each block accumulates sum_t g z^H for its sequence into its own slice of a
// global float64 buffer; inside a block, S = threads / (p q) threads share one matrix entry, each
// summing its own strided part of the (before, rest) elements into its own slot (no atomics, no
// in-kernel reduction, deterministic); blocks and slots are summed afterwards on the device.
// The bias gradient is accumulated per block in float64 too (T terms per element).
//
// Launch: one block of `threads` threads (256, 512 for N >= 1024, 1024 for N >= 2048; override
// KRUZOO_CUDA_THREADS) per sequence.  Working memory in dynamic shared memory up to the device's
// opt-in limit (227 KiB on Hopper; KRUZOO_CUDA_SMEM_BYTES caps it, 0 forces the global scratch).
// KRUZOO_CUDA_PREFETCH=1 (off until checked on a GPU): the forward copies ux[t+1] into shared
// memory with cp.async while step t runs.
//
// Status: compiled and linked in CI; not yet run on a GPU (bench/gpu_check.py is the prepared
// check), so untuned.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cuda_pipeline.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "kru_math.h"
#include "kru_plan.h"

namespace kru {
namespace {

constexpr int kMaxThreads = 1024;               // __launch_bounds__ of every kernel
constexpr size_t kSmemDefault = 48 * 1024;        // dynamic shared memory without the opt-in

// y = G_k x (or G_k^H x) for one vector, all threads of the block; ends with a barrier.
template <typename S>
__device__ void d_apply(const Group& g, bool adjoint, const S* __restrict__ packed, const S* xr,
                        const S* xi, S* yr, S* yi) {
  const int rows = adjoint ? g.q : g.p;
  const int cols = adjoint ? g.p : g.q;
  const int64_t n = static_cast<int64_t>(rows) * cols;
  const S* mr = packed + (adjoint ? g.off_fh : g.off_f);
  const S* mi = mr + n;
  const int64_t total = g.before * rows * g.rest;
  // r fastest: neighbouring threads touch neighbouring shared-memory words (no bank conflicts).
  for (int64_t idx = threadIdx.x; idx < total; idx += blockDim.x) {
    const int64_t r = idx % g.rest;
    const int64_t t = idx / g.rest;
    const int i = static_cast<int>(t % rows);
    const int64_t b = t / rows;
    S ar = 0, ai = 0;
    const int64_t xbase = b * cols * g.rest + r;
    for (int j = 0; j < cols; ++j)
      cmul_acc(mr[i * cols + j], mi[i * cols + j], xr[xbase + j * g.rest], xi[xbase + j * g.rest], ar, ai);
    yr[idx] = ar;
    yi[idx] = ai;
  }
  __syncthreads();
}

// Number of accumulator slots per factor-gradient entry of a p x q group: the threads of a block
// share the entries, S = max(1, threads / (p q)) threads per entry.  The host sizes the buffers
// with the same formula and the launch's thread count.
KRU_HD int acc_slices(int pq, int threads) { return threads / pq > 1 ? threads / pq : 1; }

// Factor-gradient term of one step:  sum_{b,r} g[b,i,r] conj(z[b,j,r])  for every entry
// e = i*q + j, accumulated (float64) into acc[acc_off + 2*(s*p*q + e) + {0,1}], slot s of the
// S slots of that entry.  Thread tid always takes entry tid % pq and slot tid / pq, so across
// the time steps each slot is updated by one thread only.
template <typename S>
__device__ void d_contract(const Group& g, const S* gr, const S* gi, const S* zr, const S* zi,
                           double* __restrict__ acc) {
  const int p = g.p, q = g.q;
  const int pq = p * q;
  const int slices = acc_slices(pq, static_cast<int>(blockDim.x));
  const int64_t inner = g.before * g.rest;
  for (int e2 = threadIdx.x; e2 < slices * pq; e2 += blockDim.x) {
    const int e = e2 % pq, s = e2 / pq;
    const int i = e / q, j = e % q;
    S sr = 0, si = 0;
    for (int64_t k = s; k < inner; k += slices) {
      const int64_t b = k / g.rest, r = k % g.rest;
      cmul_conj_acc(gr[(b * p + i) * g.rest + r], gi[(b * p + i) * g.rest + r],
                    zr[(b * q + j) * g.rest + r], zi[(b * q + j) * g.rest + r], sr, si);
    }
    acc[g.acc_off + 2 * e2] += static_cast<double>(sr);
    acc[g.acc_off + 2 * e2 + 1] += static_cast<double>(si);
  }
  __syncthreads();
}

// Forward chain: (yr, yi) = W x.  X, Y: ping-pong buffers of 2 * max_sz.
template <typename S>
__device__ void d_forward_chain(const Plan& pl, const S* packed, const S* xr, const S* xi, S* yr,
                                S* yi, S* X, S* Y) {
  walk_groups(pl, xr, xi, yr, yi, X, Y, [&](int k, const S* sr, const S* si, S* dr, S* di) {
    d_apply(pl.g[k], false, packed, sr, si, dr, di);
  });
}

// z_k for k = 1..m-1 into Z + 2*M*k.
template <typename S>
__device__ void d_prefix_chain(const Plan& pl, const S* packed, const S* xr, const S* xi, S* Z) {
  walk_prefix(pl, xr, xi, Z, [&](int k, const S* sr, const S* si, S* dr, S* di) {
    d_apply(pl.g[k], false, packed, sr, si, dr, di);
  });
}

// Backward through the groups: contracts factor gradients (if with_grads) and writes W^H g to
// (outr, outi) when outr is non-null.
template <typename S>
__device__ void d_backward_chain(const Plan& pl, const S* packed, const S* gr0, const S* gi0,
                                 const S* xr, const S* xi, const S* Z, bool with_grads, S* outr,
                                 S* outi, S* X, S* Y, double* acc) {
  walk_groups_backward(
      pl, gr0, gi0, xr, xi, Z, with_grads, outr, outi, X, Y,
      [&](int k, const S* sr, const S* si, const S* zr, const S* zi, S*, S*) {
        d_contract(pl.g[k], sr, si, zr, zi, acc);
        return false;
      },
      [&](int k, const S* sr, const S* si, S* dr, S* di) { d_apply(pl.g[k], true, packed, sr, si, dr, di); });
}

template <typename S>
__device__ S* block_work(S* gwork, int64_t per_block, bool use_smem) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  return use_smem ? reinterpret_cast<S*>(smem_raw) : gwork + blockIdx.x * per_block;
}

template <typename S>
__device__ void d_load_planar(const S* src, int64_t n, S* re, S* im) {
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    re[i] = src[2 * i];
    im[i] = src[2 * i + 1];
  }
  __syncthreads();
}

// ------------------------------------------------------------------------------------------
// kron_matvec: blocks stride over rows.

template <typename S>
__global__ void __launch_bounds__(kMaxThreads)
kron_fwd_kernel(const Plan pl, const S* __restrict__ packed, const S* __restrict__ x, S* __restrict__ y,
                int64_t rows, S* gwork, int64_t per_block, bool use_smem) {
  S* w = block_work(gwork, per_block, use_smem);
  const int64_t M = pl.max_sz;
  S* xin = w;
  S* out = xin + 2 * pl.n_in;
  S* X = out + 2 * pl.n_out;
  S* Y = X + 2 * M;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    d_load_planar(x + row * 2 * pl.n_in, pl.n_in, xin, xin + pl.n_in);
    d_forward_chain(pl, packed, xin, xin + pl.n_in, out, out + pl.n_out, X, Y);
    for (int64_t i = threadIdx.x; i < pl.n_out; i += blockDim.x) {
      y[row * 2 * pl.n_out + 2 * i] = out[i];
      y[row * 2 * pl.n_out + 2 * i + 1] = out[pl.n_out + i];
    }
    __syncthreads();
  }
}

template <typename S>
__global__ void __launch_bounds__(kMaxThreads)
kron_bwd_kernel(const Plan pl, const S* __restrict__ packed, const S* __restrict__ gy,
                const S* __restrict__ x, S* __restrict__ gx, int64_t rows, bool with_grads,
                double* __restrict__ gacc, S* gwork, int64_t per_block, bool use_smem) {
  S* w = block_work(gwork, per_block, use_smem);
  const int64_t M = pl.max_sz;
  S* xin = w;
  S* gin = xin + 2 * pl.n_in;
  S* out = gin + 2 * pl.n_out;
  S* X = out + 2 * pl.n_in;
  S* Y = X + 2 * M;
  S* Z = Y + 2 * M;
  double* acc = gacc + blockIdx.x * pl.acc_size;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    d_load_planar(gy + row * 2 * pl.n_out, pl.n_out, gin, gin + pl.n_out);
    if (with_grads) {
      d_load_planar(x + row * 2 * pl.n_in, pl.n_in, xin, xin + pl.n_in);
      d_prefix_chain(pl, packed, xin, xin + pl.n_in, Z);
    }
    d_backward_chain(pl, packed, gin, gin + pl.n_out, xin, xin + pl.n_in, Z, with_grads,
                     gx ? out : nullptr, out + pl.n_in, X, Y, acc);
    if (gx != nullptr) {
      for (int64_t i = threadIdx.x; i < pl.n_in; i += blockDim.x) {
        gx[row * 2 * pl.n_in + 2 * i] = out[i];
        gx[row * 2 * pl.n_in + 2 * i + 1] = out[pl.n_in + i];
      }
    }
    __syncthreads();
  }
}

// ------------------------------------------------------------------------------------------
// kru_recurrence: one block per sequence, the time loop inside.

template <typename S>
__global__ void __launch_bounds__(kMaxThreads)
kru_fwd_kernel(const Plan pl, const S* __restrict__ packed, const S* __restrict__ ux,
               const S* __restrict__ h0, const S* __restrict__ bias, S eps, S* __restrict__ hs,
               int64_t T, S* gwork, int64_t per_block, bool use_smem, bool prefetch) {
  S* w = block_work(gwork, per_block, use_smem);
  const int64_t N = pl.n_in, M = pl.max_sz;
  const int64_t b = blockIdx.x;
  S* h = w;
  S* a = h + 2 * N;
  S* X = a + 2 * N;
  S* Y = X + 2 * M;
  // prefetch (shared-memory path only): ux[t] is copied asynchronously (cp.async) into u while
  // step t-1 runs, instead of each step waiting for a global load after its W h.  Each thread
  // copies and later reads the same elements (same n loop), so waiting for its own copies is
  // enough; the end-of-step barrier orders the reads of u before the next copy overwrites it.
  S* u = Y + 2 * M;  // 2N scalars, interleaved (re, im) like ux
  auto issue = [&](int64_t t) {
    const S* src = ux + (b * T + t) * 2 * N;
    for (int64_t n = threadIdx.x; n < N; n += blockDim.x)
      __pipeline_memcpy_async(u + 2 * n, src + 2 * n, 2 * sizeof(S));
    __pipeline_commit();
  };
  d_load_planar(h0 + b * 2 * N, N, h, h + N);
  if (prefetch) issue(0);
  for (int64_t t = 0; t < T; ++t) {
    d_forward_chain(pl, packed, h, h + N, a, a + N, X, Y);
    const int64_t base = (b * T + t) * 2 * N;
    const S* us = ux + base;
    if (prefetch) {
      __pipeline_wait_prior(0);
      us = u;
    }
    for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
      S r, i;
      modrelu_fwd(a[n] + us[2 * n], a[N + n] + us[2 * n + 1], bias[n], eps, r, i);
      h[n] = r;
      h[N + n] = i;
      hs[base + 2 * n] = r;
      hs[base + 2 * n + 1] = i;
    }
    __syncthreads();
    if (prefetch && t + 1 < T) issue(t + 1);
  }
}

template <typename S>
__global__ void __launch_bounds__(kMaxThreads)
kru_bwd_kernel(const Plan pl, const S* __restrict__ packed, const S* __restrict__ ghs,
               const S* __restrict__ glast, const S* __restrict__ ux, const S* __restrict__ hs, const S* __restrict__ h0,
               const S* __restrict__ bias, S eps, int64_t T, bool with_grads,
               S* __restrict__ gux, S* __restrict__ gh0, double* __restrict__ gacc,
               double* __restrict__ gbias, S* gwork, int64_t per_block, bool use_smem) {
  S* w = block_work(gwork, per_block, use_smem);
  const int64_t N = pl.n_in, M = pl.max_sz;
  const int64_t b = blockIdx.x;
  S* carry = w;
  S* ga = carry + 2 * N;
  S* hp = ga + 2 * N;
  S* wh = hp + 2 * N;
  S* X = wh + 2 * N;
  S* Y = X + 2 * M;
  S* Z = Y + 2 * M;
  double* acc = gacc + b * pl.acc_size;
  double* gb = gbias + b * N;
  // ghs / glast may be null (no gradient for all states / the last one). dL/dh_{T-1} = ghs[T-1] +
  // glast: glast enters as the initial carry.
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
    carry[n] = glast ? glast[b * 2 * N + 2 * n] : S(0);
    carry[N + n] = glast ? glast[b * 2 * N + 2 * n + 1] : S(0);
    gb[n] = 0.0;
  }
  __syncthreads();
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t base = (b * T + t) * 2 * N;
    d_load_planar(t > 0 ? hs + base - 2 * N : h0 + b * 2 * N, N, hp, hp + N);
    d_prefix_chain(pl, packed, hp, hp + N, Z);
    const S* zl = pl.m == 1 ? hp : Z + 2 * M * (pl.m - 1);
    const int64_t zl_im = pl.m == 1 ? N : M;
    d_apply(pl.g[pl.m - 1], false, packed, zl, zl + zl_im, wh, wh + N);
    for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
      S r, i, db;
      const S gr = ghs ? ghs[base + 2 * n] : S(0);
      const S gi = ghs ? ghs[base + 2 * n + 1] : S(0);
      modrelu_bwd(wh[n] + ux[base + 2 * n], wh[N + n] + ux[base + 2 * n + 1], bias[n], eps,
                  gr + carry[n], gi + carry[N + n], r, i, db);
      ga[n] = r;
      ga[N + n] = i;
      gb[n] += static_cast<double>(db);
      gux[base + 2 * n] = r;
      gux[base + 2 * n + 1] = i;
    }
    __syncthreads();
    d_backward_chain(pl, packed, ga, ga + N, hp, hp + N, Z, with_grads, carry, carry + N, X, Y, acc);
  }
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
    gh0[b * 2 * N + 2 * n] = carry[n];
    gh0[b * 2 * N + 2 * n + 1] = carry[N + n];
  }
}

// ------------------------------------------------------------------------------------------
// host side

// Layout of the float64 factor-gradient accumulators of one block: per group, `slices` slots of
// 2*p*q scalars ([i*q + j] interleaved re, im); slices = max(1, threads / (p q)).
void assign_acc(Plan& pl, int threads) {
  int64_t off = 0;
  for (int k = 0; k < pl.m; ++k) {
    const int pq = pl.g[k].p * pl.g[k].q;
    pl.g[k].acc_off = off;
    off += 2 * static_cast<int64_t>(pq) * acc_slices(pq, threads);
  }
  pl.acc_size = off;
}

// Summed per-block, per-slot accumulators (nblocks, acc_size) -> complex (p, q) per group that
// needs it, in the real dtype `dt`'s complex type.
std::vector<at::Tensor> group_grads_from(const Plan& pl, int threads, const at::Tensor& gacc,
                                         at::ScalarType dt) {
  const at::Tensor total = gacc.sum(0);
  std::vector<at::Tensor> out(pl.m);
  for (int k = 0; k < pl.m; ++k) {
    if (!pl.g[k].need_grad) continue;
    const int64_t p = pl.g[k].p, q = pl.g[k].q;
    const int64_t ns = acc_slices(static_cast<int>(p * q), threads);
    const at::Tensor slots = total.narrow(0, pl.g[k].acc_off, 2 * p * q * ns).reshape({ns, p, q, 2});
    out[k] = at::view_as_complex(slots.sum(0).to(dt).contiguous());
  }
  return out;
}

int env_int(const char* name, int dflt) {
  const char* v = std::getenv(name);
  return (v == nullptr || *v == '\0') ? dflt : static_cast<int>(std::strtol(v, nullptr, 10));
}

// Threads per block: enough that each thread holds a few elements of the state.
int threads_for(int64_t n) {
  int t = n >= 2048 ? 1024 : n >= 1024 ? 512 : 256;
  t = env_int("KRUZOO_CUDA_THREADS", t);
  TORCH_CHECK(t >= 32 && t <= kMaxThreads && t % 32 == 0,
              "kruzoo: KRUZOO_CUDA_THREADS must be a multiple of 32 in [32, ", kMaxThreads, "], got ", t);
  return t;
}

// The device's opt-in dynamic shared memory per block (227 KiB on Hopper), cached per device.
// (Read through the runtime API: ATen/cuda/CUDAContext.h would need the cuSPARSE headers.)
size_t smem_optin() {
  static int cached[64] = {0};
  const int dev = c10::cuda::current_device();
  if (dev < 0 || dev >= 64) return kSmemDefault;
  if (cached[dev] == 0) {
    int v = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    cached[dev] = std::max(v, 1);
  }
  return static_cast<size_t>(cached[dev]);
}

struct Launch {
  bool use_smem;
  size_t smem;
  int64_t per_block;
  at::Tensor scratch;
};

// Working memory of each block: dynamic shared memory when it fits the device's opt-in limit
// (capped by KRUZOO_CUDA_SMEM_BYTES; 0 forces the global path), else a per-block slice of a
// global scratch buffer (L2 resident for moderate sizes).
Launch plan_memory(int64_t scalars_per_block, int64_t blocks, size_t elem, const at::TensorOptions& opt) {
  Launch l;
  l.per_block = scalars_per_block;
  const size_t bytes = static_cast<size_t>(scalars_per_block) * elem;
  size_t limit = std::max<size_t>(smem_optin(), kSmemDefault);
  const int cap = env_int("KRUZOO_CUDA_SMEM_BYTES", -1);
  if (cap >= 0) limit = std::min<size_t>(limit, static_cast<size_t>(cap));
  l.use_smem = bytes <= limit;
  l.smem = l.use_smem ? bytes : 0;
  l.scratch = l.use_smem ? at::empty({1}, opt) : at::empty({blocks * scalars_per_block}, opt);
  return l;
}

// Above 48 KiB a kernel must opt in to its dynamic shared memory size.
template <typename Kernel>
void allow_smem(Kernel kernel, const Launch& l) {
  if (l.smem > kSmemDefault)
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(l.smem)));
}

int64_t grid_for_rows(int64_t rows) { return std::max<int64_t>(1, std::min<int64_t>(rows, 1024)); }

// Every tensor argument on the kernel's device with the kernel's dtype (the kernels read raw
// pointers: a CPU factor or a float64 h0 next to float32 ux would be read as garbage).
void check_same(const at::Tensor& ref, const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.device() == ref.device(), "kruzoo.", op, ": ", name, " is on ", t.device(),
              " but the other inputs are on ", ref.device(), " (all inputs must be on one device)");
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "kruzoo.", op, ": ", name, " is ", t.scalar_type(),
              " but the other inputs are ", ref.scalar_type(), " (all inputs must share one real dtype)");
}

void check_factors(const at::Tensor& ref, at::TensorList factors, const char* op) {
  for (const auto& f : factors) check_same(ref, f, op, "a factor");
}

at::Tensor kron_matvec_cuda(const at::Tensor& x_in, at::TensorList factors) {
  check_pair(x_in, "x", 3);
  TORCH_CHECK(!factors.empty(), "kruzoo.kron_matvec: need at least one factor");
  check_factors(x_in, factors, "kron_matvec");
  const c10::cuda::CUDAGuard guard(x_in.device());
  HostPlan hp = make_plan(factors, {}, 1);  // no special last group: all axes map to threads
  Plan pl = hp.plan;
  const int threads = threads_for(pl.max_sz);
  assign_acc(pl, threads);
  TORCH_CHECK(x_in.size(1) == pl.n_in, "kruzoo.kron_matvec: x has ", x_in.size(1), " columns, factors need ", pl.n_in);
  const at::Tensor x = x_in.contiguous();
  const int64_t rows = x.size(0);
  at::Tensor y = at::empty({rows, pl.n_out, 2}, x.options());
  if (rows == 0) return y;
  const int64_t grid = grid_for_rows(rows);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kruzoo_kron_matvec_cuda", [&] {
    using S = scalar_t;
    Launch l = plan_memory(2 * pl.n_in + 2 * pl.n_out + 4 * pl.max_sz, grid, sizeof(S), x.options());
    allow_smem(kron_fwd_kernel<S>, l);
    kron_fwd_kernel<S><<<grid, threads, l.smem, c10::cuda::getCurrentCUDAStream()>>>(
        pl, hp.packed.data_ptr<S>(), x.data_ptr<S>(), y.data_ptr<S>(), rows, l.scratch.data_ptr<S>(),
        l.per_block, l.use_smem);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

std::tuple<at::Tensor, std::vector<at::Tensor>> kron_matvec_backward_cuda(
    const at::Tensor& gy_in, const at::Tensor& x_in, at::TensorList factors, bool need_x,
    const c10::List<bool>& needs_list) {
  const std::vector<bool> need = to_vec(needs_list);
  check_pair(x_in, "x", 3);
  check_pair(gy_in, "grad_y", 3);
  TORCH_CHECK(!factors.empty(), "kruzoo.kron_matvec_backward: need at least one factor");
  check_same(x_in, gy_in, "kron_matvec_backward", "grad_y");
  check_factors(x_in, factors, "kron_matvec_backward");
  const c10::cuda::CUDAGuard guard(x_in.device());
  HostPlan hp = make_plan(factors, need, 1);
  Plan pl = hp.plan;
  const int threads = threads_for(pl.max_sz);
  assign_acc(pl, threads);
  const at::Tensor x = x_in.contiguous(), gy = gy_in.contiguous();
  const int64_t rows = x.size(0);
  TORCH_CHECK(x.size(1) == pl.n_in, "kruzoo.kron_matvec_backward: x has ", x.size(1), " columns, factors need ", pl.n_in);
  TORCH_CHECK(gy.size(0) == rows && gy.size(1) == pl.n_out, "kruzoo: grad_y has shape ", gy.sizes(),
              ", expected (", rows, ", ", pl.n_out, ", 2)");
  at::Tensor gx = need_x ? at::empty_like(x) : at::empty({0}, x.options());
  const bool want = any_of(need);
  const int64_t grid = grid_for_rows(rows);
  at::Tensor gacc = at::zeros({grid, std::max<int64_t>(pl.acc_size, 1)}, x.options().dtype(at::kDouble));
  if (rows > 0 && (need_x || want)) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kruzoo_kron_matvec_backward_cuda", [&] {
      using S = scalar_t;
      Launch l = plan_memory(4 * pl.n_in + 2 * pl.n_out + 4 * pl.max_sz + 2 * pl.max_sz * pl.m, grid,
                             sizeof(S), x.options());
      allow_smem(kron_bwd_kernel<S>, l);
      kron_bwd_kernel<S><<<grid, threads, l.smem, c10::cuda::getCurrentCUDAStream()>>>(
          pl, hp.packed.data_ptr<S>(), gy.data_ptr<S>(), x.data_ptr<S>(),
          need_x ? gx.data_ptr<S>() : nullptr, rows, want, gacc.data_ptr<double>(),
          l.scratch.data_ptr<S>(), l.per_block, l.use_smem);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  // rows == 0: the accumulators stay zero, so the factor gradients are zeros.
  std::vector<at::Tensor> gg = want ? group_grads_from(pl, threads, gacc, x.scalar_type()) : std::vector<at::Tensor>(pl.m);
  return {gx, map_group_grads(hp, factors, gg, need)};
}

void check_recurrence_inputs(const at::Tensor& ux, const at::Tensor& h0, at::TensorList factors,
                             const at::Tensor& bias, const char* op) {
  check_pair(ux, "ux", 4);
  check_pair(h0, "h0", 3);
  TORCH_CHECK(!factors.empty(), "kruzoo.", op, ": need at least one factor");
  check_same(ux, h0, op, "h0");
  check_same(ux, bias, op, "bias");
  check_factors(ux, factors, op);
  TORCH_CHECK(h0.size(0) == ux.size(0) && h0.size(1) == ux.size(2), "kruzoo.", op, ": h0 has shape ",
              h0.sizes(), " but ux is ", ux.sizes());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == ux.size(2), "kruzoo.", op, ": bias must be (N,), got ",
              bias.sizes());
}

std::tuple<at::Tensor, at::Tensor> kru_recurrence_cuda(const at::Tensor& ux_in, const at::Tensor& h0_in,
                                                       at::TensorList factors, const at::Tensor& bias_in,
                                                       double eps) {
  check_recurrence_inputs(ux_in, h0_in, factors, bias_in, "kru_recurrence");
  const c10::cuda::CUDAGuard guard(ux_in.device());
  HostPlan hp = make_plan(factors, {}, 1);
  Plan pl = hp.plan;
  const int64_t B = ux_in.size(0), T = ux_in.size(1), N = ux_in.size(2);
  const int threads = threads_for(pl.max_sz);
  assign_acc(pl, threads);
  TORCH_CHECK(pl.n_in == N && pl.n_out == N, "kruzoo.kru_recurrence: factors map ", pl.n_in, " -> ",
              pl.n_out, ", state has N = ", N);
  const at::Tensor ux = ux_in.contiguous(), h0 = h0_in.contiguous(), bias = bias_in.contiguous();
  at::Tensor hs = at::empty_like(ux);
  // The last state as its own output (see kru_cpu.cpp); T = 0: h0.
  if (B == 0 || T == 0) return {hs, h0.clone()};
  AT_DISPATCH_FLOATING_TYPES(ux.scalar_type(), "kruzoo_kru_recurrence_cuda", [&] {
    using S = scalar_t;
    // KRUZOO_CUDA_PREFETCH=1: the asynchronous prefetch of ux (off by default until it has been
    // checked and timed on a GPU; bench/gpu_check.py does both); needs the shared-memory path and
    // 8/16-byte aligned ux (always for a contiguous complex tensor's real view).
    const bool aligned = reinterpret_cast<uintptr_t>(ux.data_ptr<S>()) % (2 * sizeof(S)) == 0;
    bool prefetch = env_int("KRUZOO_CUDA_PREFETCH", 0) != 0 && aligned;
    Launch l = plan_memory(4 * N + 4 * pl.max_sz + (prefetch ? 2 * N : 0), B, sizeof(S), ux.options());
    if (prefetch && !l.use_smem) {  // does not fit with the staging buffer: plan without it
      prefetch = false;
      l = plan_memory(4 * N + 4 * pl.max_sz, B, sizeof(S), ux.options());
    }
    allow_smem(kru_fwd_kernel<S>, l);
    kru_fwd_kernel<S><<<B, threads, l.smem, c10::cuda::getCurrentCUDAStream()>>>(
        pl, hp.packed.data_ptr<S>(), ux.data_ptr<S>(), h0.data_ptr<S>(), bias.data_ptr<S>(),
        static_cast<S>(eps), hs.data_ptr<S>(), T, l.scratch.data_ptr<S>(), l.per_block, l.use_smem,
        prefetch);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {hs, hs.select(1, T - 1).clone()};
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>, at::Tensor> kru_recurrence_backward_cuda(
    const c10::optional<at::Tensor>& ghs_in, const c10::optional<at::Tensor>& glast_in,
    const at::Tensor& ux_in, const at::Tensor& hs_in, const at::Tensor& h0_in, at::TensorList factors,
    const at::Tensor& bias_in, double eps, const c10::List<bool>& needs_list) {
  const std::vector<bool> need = to_vec(needs_list);
  check_recurrence_inputs(ux_in, h0_in, factors, bias_in, "kru_recurrence_backward");
  check_same(ux_in, hs_in, "kru_recurrence_backward", "hs");
  TORCH_CHECK(hs_in.sizes() == ux_in.sizes(), "kruzoo: hs / ux shapes differ");
  const c10::cuda::CUDAGuard guard(ux_in.device());
  HostPlan hp = make_plan(factors, need, 1);
  Plan pl = hp.plan;
  const int64_t B = ux_in.size(0), T = ux_in.size(1), N = ux_in.size(2);
  TORCH_CHECK(pl.n_in == N && pl.n_out == N, "kruzoo.kru_recurrence_backward: factors map ", pl.n_in,
              " -> ", pl.n_out, ", state has N = ", N);
  const int threads = threads_for(pl.max_sz);
  assign_acc(pl, threads);
  const bool has_ghs = ghs_in.has_value() && ghs_in->defined();
  const bool has_glast = glast_in.has_value() && glast_in->defined();
  TORCH_CHECK(!has_ghs || ghs_in->sizes() == ux_in.sizes(), "kruzoo: grad_hs shape does not match ux");
  TORCH_CHECK(!has_glast || glast_in->sizes() == h0_in.sizes(), "kruzoo: grad_last shape does not match h0");
  if (has_ghs) check_same(ux_in, *ghs_in, "kru_recurrence_backward", "grad_hs");
  if (has_glast) check_same(ux_in, *glast_in, "kru_recurrence_backward", "grad_last");
  const at::Tensor ghs = has_ghs ? ghs_in->contiguous() : at::Tensor();
  const at::Tensor glast = has_glast ? glast_in->contiguous() : at::Tensor();
  const at::Tensor ux = ux_in.contiguous(), hs = hs_in.contiguous();
  const at::Tensor h0 = h0_in.contiguous(), bias = bias_in.contiguous();
  at::Tensor gux = at::empty_like(ux);
  at::Tensor gh0 = at::empty_like(h0);
  const bool want = any_of(need);
  const auto dopt = ux.options().dtype(at::kDouble);
  at::Tensor gacc = at::zeros({std::max<int64_t>(B, 1), std::max<int64_t>(pl.acc_size, 1)}, dopt);
  at::Tensor gbias_blocks = at::zeros({std::max<int64_t>(B, 1), N}, dopt);
  if (B > 0 && T > 0) {
    AT_DISPATCH_FLOATING_TYPES(ux.scalar_type(), "kruzoo_kru_recurrence_backward_cuda", [&] {
      using S = scalar_t;
      Launch l = plan_memory(8 * N + 4 * pl.max_sz + 2 * pl.max_sz * pl.m, B, sizeof(S), ux.options());
      allow_smem(kru_bwd_kernel<S>, l);
      kru_bwd_kernel<S><<<B, threads, l.smem, c10::cuda::getCurrentCUDAStream()>>>(
          pl, hp.packed.data_ptr<S>(), has_ghs ? ghs.data_ptr<S>() : nullptr,
          has_glast ? glast.data_ptr<S>() : nullptr, ux.data_ptr<S>(), hs.data_ptr<S>(),
          h0.data_ptr<S>(), bias.data_ptr<S>(), static_cast<S>(eps), T, want, gux.data_ptr<S>(),
          gh0.data_ptr<S>(), gacc.data_ptr<double>(), gbias_blocks.data_ptr<double>(),
          l.scratch.data_ptr<S>(), l.per_block, l.use_smem);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  } else {
    gux.zero_();
    // T = 0: the last state is h0 itself.
    if (has_glast) gh0.copy_(glast); else gh0.zero_();
  }
  std::vector<at::Tensor> gg = want ? group_grads_from(pl, threads, gacc, ux.scalar_type()) : std::vector<at::Tensor>(pl.m);
  return {gux, gh0, map_group_grads(hp, factors, gg, need), gbias_blocks.sum(0).to(ux.scalar_type())};
}

}  // namespace
}  // namespace kru

TORCH_LIBRARY_IMPL(kruzoo, CUDA, m) {
  m.impl("kron_matvec", &kru::kron_matvec_cuda);
  m.impl("kron_matvec_backward", &kru::kron_matvec_backward_cuda);
  m.impl("kru_recurrence", &kru::kru_recurrence_cuda);
  m.impl("kru_recurrence_backward", &kru::kru_recurrence_backward_cuda);
}
