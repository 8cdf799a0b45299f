// Per-element arithmetic of the KRU ops, shared by the CPU build (kru_cpu.cpp) and the CUDA
// build (kru_cuda.cu).  Everything here is a plain function of real scalars so that the CPU
// tests exercise exactly the code the GPU runs.  Complex numbers are (re, im) pairs of reals.
#pragma once

#include <cstdint>
#include <cmath>

#if defined(__CUDACC__)
#define KRU_HD __host__ __device__ __forceinline__
#else
#define KRU_HD inline
#endif

namespace kru {

// Limits of the grouped-factor plan passed by value to kernels (kept small: a kernel's
// parameter block is limited to a few KiB).
constexpr int kMaxGroups = 32;

// One grouped factor G (the Kronecker product of consecutive user factors) applied to one axis
// of the state viewed as (before, q, rest) -> (before, p, rest).
struct Group {
  int p = 0, q = 0;                  // rows, columns of G
  int64_t before = 0, rest = 0;      // product of the row sizes to the left, column sizes to the right
  // Offsets (in scalars) into the packed factor buffer of four planar matrices; each is a
  // re block of rows*cols scalars followed by an im block of the same size:
  //   f   = G       (p x q, row major)
  //   ft  = G^T     (q x p, row major)  i.e. G column major, for vectorising over the row index
  //   fh  = G^H     (q x p, row major)
  //   fht = conj(G) (p x q, row major)  i.e. G^H column major
  int64_t off_f = 0, off_ft = 0, off_fh = 0, off_fht = 0;
  int64_t acc_off = 0;               // offset of this group's gradient accumulator (backend specific)
  int need_grad = 0;                 // 1 if any user factor in this group needs a gradient
  // CPU only: > 0 when this (last) group is a "lane tail" of that many 2x2 factors, applied
  // inside one SIMD vector with lane permutations instead of as a dense matrix (see kru_cpu.cpp);
  // off_lane is the offset of its per-lane coefficient vectors in the packed buffer.
  int lane_tail = 0;
  int64_t off_lane = 0;
};

struct Plan {
  int m = 0;                 // number of groups
  int64_t n_in = 0;          // prod q (length of x)
  int64_t n_out = 0;         // prod p (length of W x)
  int64_t max_sz = 0;        // largest intermediate vector length while applying the groups
  int64_t acc_size = 0;      // total accumulator size (backend specific)
  Group g[kMaxGroups];
};

// Length of the intermediate vector after the first k groups have been applied:
// prod_{i<k} p_i * prod_{i>=k} q_i.
KRU_HD int64_t inter_size(const Plan& pl, int k) {
  int64_t s = 1;
  for (int i = 0; i < pl.m; ++i) s *= (i < k) ? pl.g[i].p : pl.g[i].q;
  return s;
}

template <typename S>
KRU_HD S kru_sqrt(S x) {
#if defined(__CUDA_ARCH__)
  return sqrt(x);  // CUDA overloads sqrt for float and double
#else
  return std::sqrt(x);
#endif
}

// Applies the groups of a plan in order to x, writing W x to (yr, yi).  The intermediate vectors
// alternate between two scratch buffers X and Y of 2 * max_sz scalars each (re half, then im
// half); apply(k, src_re, src_im, dst_re, dst_im) applies group k.  The CPU forward chain and the
// CUDA one differ only in `apply`.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <typename S, typename Apply>
KRU_HD void walk_groups(const Plan& pl, const S* xr, const S* xi, S* yr, S* yi, S* X, S* Y,
                        Apply&& apply) {
  const S* sr = xr;
  const S* si = xi;
  for (int k = 0; k < pl.m; ++k) {
    S* dr = yr;
    S* di = yi;
    if (k != pl.m - 1) {
      dr = (sr == X) ? Y : X;
      di = dr + pl.max_sz;
    }
    apply(k, sr, si, dr, di);
    sr = dr;
    si = di;
  }
}

// The group inputs the factor gradients need: z_k = G_{k-1} ... G_0 x for k = 1..m-1 into
// Z + 2*max_sz*k (re half, then im half); apply as in walk_groups.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <typename S, typename Apply>
KRU_HD void walk_prefix(const Plan& pl, const S* xr, const S* xi, S* Z, Apply&& apply) {
  const int64_t M = pl.max_sz;
  const S* sr = xr;
  const S* si = xi;
  for (int k = 1; k < pl.m; ++k) {
    S* d = Z + 2 * M * k;
    apply(k - 1, sr, si, d, d + M);
    sr = d;
    si = d + M;
  }
}

// Backward through the groups, last to first, for one vector: g (length n_out) is the gradient
// at the output, x = z_0 and Z (from walk_prefix) the group inputs. For each group k that needs
// a gradient (when with_grads), grad(k, g_re, g_im, z_re, z_im, dst_re, dst_im) accumulates
// dL/dG_k and returns true when it also wrote the adjoint G_k^H g to dst (a fused kernel), false
// otherwise; adjoint(k, g_re, g_im, dst_re, dst_im) writes G_k^H g. The result W^H g lands in
// (outr, outi), or is not computed when outr is null; X, Y as in walk_groups.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <typename S, typename Grad, typename Adjoint>
KRU_HD void walk_groups_backward(const Plan& pl, const S* gr, const S* gi, const S* xr, const S* xi,
                                 const S* Z, bool with_grads, S* outr, S* outi, S* X, S* Y,
                                 Grad&& grad, Adjoint&& adjoint) {
  const int64_t M = pl.max_sz;
  const S* sr = gr;
  const S* si = gi;
  for (int k = pl.m - 1; k >= 0; --k) {
    S* dr = outr;
    S* di = outi;
    if (k != 0) {
      dr = (sr == X) ? Y : X;
      di = dr + M;
    }
    if (with_grads && pl.g[k].need_grad) {
      const S* zr = k == 0 ? xr : Z + 2 * M * k;
      const S* zi = k == 0 ? xi : Z + 2 * M * k + M;
      if (grad(k, sr, si, zr, zi, dr, di)) {
        sr = dr;
        si = di;
        continue;
      }
    }
    if (k == 0 && outr == nullptr) break;
    adjoint(k, sr, si, dr, di);
    sr = dr;
    si = di;
  }
}

// modReLU forward on one complex element:  mag = sqrt(re^2 + im^2 + eps),
// h = a * relu(mag + b) / mag.  Written without branches so that the CPU loops vectorise.
// At a = 0 exactly the scale is taken as 0 (same value, h = 0); see modrelu_bwd for why.
template <typename S>
KRU_HD void modrelu_fwd(S ar, S ai, S b, S eps, S& hr, S& hi) {
  const S a2 = ar * ar + ai * ai;
  const S mag = kru_sqrt(a2 + eps);
  const S act = mag + b;
  const S s = (act > S(0) && a2 > S(0)) ? act / mag : S(0);
  hr = ar * s;
  hi = ai * s;
}

// modReLU backward on one element.  (gr, gi) is dL/dRe h + i dL/dIm h (PyTorch's convention
// for the gradient of a real loss w.r.t. a complex tensor).  Returns the same for a and the
// contribution to dL/db.  With s = 1 + b/mag on the active side:
//   dL/da = s * g + a * (-b * <a, g> / mag^3),   dL/db = <a, g> / mag,   <a, g> = ar gr + ai gi.
// relu'(0) = 0 as in torch.relu.  At a = 0 exactly the derivative is taken as 0, not the smoothed
// 1 + b/sqrt(eps) (modReLU has none there).  In practice a = 0 while the state is still h_0 = 0
// and the input is 0 (pixel MNIST's blank prefix), where no parameter gradient flows anyway
// (dL/dW ~ h = 0, dL/dU ~ x = 0, dL/db ~ <a, g> = 0), but a factor of 1 + b/sqrt(eps) per step
// overflowed BPTT to inf, then NaN.
template <typename S>
KRU_HD void modrelu_bwd(S ar, S ai, S b, S eps, S gr, S gi, S& gar, S& gai, S& gb) {
  const S a2 = ar * ar + ai * ai;
  const S mag = kru_sqrt(a2 + eps);
  const S inv = S(1) / mag;
  const S act = mag + b;
  const S on = (act > S(0) && a2 > S(0)) ? S(1) : S(0);
  const S s = on * act * inv;
  const S dot = ar * gr + ai * gi;
  const S c = -on * b * dot * inv * inv * inv;
  gar = s * gr + ar * c;
  gai = s * gi + ai * c;
  gb = on * dot * inv;
}

// Accumulate  acc += g * conj(z)  (one term of a factor gradient  dL/dG = sum g z^H).
template <typename S>
KRU_HD void cmul_conj_acc(S gr, S gi, S zr, S zi, S& accr, S& acci) {
  accr += gr * zr + gi * zi;
  acci += gi * zr - gr * zi;
}

// acc += w * x
template <typename S>
KRU_HD void cmul_acc(S wr, S wi, S xr, S xi, S& accr, S& acci) {
  accr += wr * xr - wi * xi;
  acci += wr * xi + wi * xr;
}

}  // namespace kru
