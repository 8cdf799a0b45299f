#include "kru_plan.h"

#include <complex>
#include <cstdlib>
#include <string>

namespace kru {

namespace {

int64_t env_int(const char* name, int64_t dflt) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return dflt;
  return std::strtoll(v, nullptr, 10);
}

// Largest last group we build automatically: a 64x64 complex block is still cache resident.
constexpr int64_t kLastCap = 64;

}  // namespace

std::vector<bool> to_vec(const c10::List<bool>& l) {
  std::vector<bool> v;
  for (size_t i = 0; i < l.size(); ++i) v.push_back(l.get(i));
  return v;
}

bool any_of(const std::vector<bool>& a) {
  for (bool b : a)
    if (b) return true;
  return false;
}

void check_pair(const at::Tensor& t, const char* name, int64_t dim) {
  TORCH_CHECK(t.dim() == dim, "kruzoo: ", name, " must have ", dim, " dims (real pairs), got shape ",
              t.sizes());
  TORCH_CHECK(t.size(-1) == 2, "kruzoo: ", name, " must end in a real-pair dim of size 2, got ",
              t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "kruzoo: ", name,
              " must be float32 or float64 (view_as_real of complex64/complex128), got ",
              t.scalar_type());
}

int lane_tail_len(const std::vector<int64_t>& ps, const std::vector<int64_t>& qs, int64_t lane_width) {
  if (lane_width <= 1 || env_int("KRUZOO_LANE_TAIL", 1) == 0 || env_int("KRUZOO_FUSE", 1) == 0) return 0;
  int kt = 0;
  while ((int64_t{1} << kt) < lane_width) ++kt;
  if ((int64_t{1} << kt) != lane_width || static_cast<int>(ps.size()) < kt) return 0;
  for (int i = static_cast<int>(ps.size()) - kt; i < static_cast<int>(ps.size()); ++i)
    if (ps[i] != 2 || qs[i] != 2) return 0;
  return kt;
}

std::vector<std::pair<int, int>> group_ranges(const std::vector<int64_t>& ps,
                                              const std::vector<int64_t>& qs, int64_t min_last,
                                              int64_t lane_width) {
  const int k = static_cast<int>(ps.size());
  std::vector<std::pair<int, int>> out;
  if (env_int("KRUZOO_FUSE", 1) == 0) {
    for (int i = 0; i < k; ++i) out.emplace_back(i, i + 1);
    return out;
  }
  const int64_t max_inner = env_int("KRUZOO_FUSE_INNER", 4);
  min_last = env_int("KRUZOO_FUSE_LAST", min_last);

  int s = k - 1;
  const int kt = lane_tail_len(ps, qs, lane_width);
  if (kt > 0) {
    s = k - kt;  // the lane tail; the groups to its left then see rest >= lane_width
  } else {
    // Last group: always holds the last factor; grows leftwards while it is too small to
    // vectorise over and stays within the cap.
    int64_t pl = ps[s], ql = qs[s];
    while (s > 0 && (pl < min_last || ql < min_last) && pl * ps[s - 1] <= kLastCap &&
           ql * qs[s - 1] <= kLastCap) {
      --s;
      pl *= ps[s];
      ql *= qs[s];
    }
  }
  // The others: greedy runs whose row and column products stay <= max_inner.
  int i = 0;
  while (i < s) {
    int j = i;
    int64_t p = 1, q = 1;
    while (j < s && (j == i || (p * ps[j] <= max_inner && q * qs[j] <= max_inner))) {
      p *= ps[j];
      q *= qs[j];
      ++j;
    }
    out.emplace_back(i, j);
    i = j;
  }
  out.emplace_back(s, k);
  return out;
}

namespace {

// Factor values as complex doubles on the host (the factors are tiny; reading them directly
// avoids ~100 small ATen ops per call that made up most of a call's fixed overhead).
std::vector<std::complex<double>> read_factor(const at::Tensor& f_in) {
  at::Tensor f = f_in.device().is_cpu() ? f_in.contiguous() : f_in.cpu().contiguous();
  const int64_t n = f.size(0) * f.size(1);
  std::vector<std::complex<double>> out(n);
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "kruzoo_read_factor", [&] {
    const scalar_t* d = f.data_ptr<scalar_t>();
    for (int64_t i = 0; i < n; ++i) out[i] = {static_cast<double>(d[2 * i]), static_cast<double>(d[2 * i + 1])};
  });
  return out;
}

}  // namespace

HostPlan make_plan(at::TensorList factors, const std::vector<bool>& need_grad, int64_t min_last,
                   int64_t lane_width) {
  using cd = std::complex<double>;
  TORCH_CHECK(!factors.empty(), "kruzoo: need at least one factor");
  TORCH_CHECK(need_grad.empty() || need_grad.size() == factors.size(),
              "kruzoo: factor_needs_grad has ", need_grad.size(), " entries for ", factors.size(),
              " factors");
  const auto dtype = factors[0].scalar_type();
  const auto device = factors[0].device();
  std::vector<int64_t> ps, qs;
  HostPlan hp;
  for (size_t i = 0; i < factors.size(); ++i) {
    const auto& f = factors[i];
    check_pair(f, "factor", 3);
    TORCH_CHECK(f.scalar_type() == dtype && f.device() == device,
                "kruzoo: all factors must share dtype and device; factor ", i, " is ",
                f.scalar_type(), " on ", f.device());
    TORCH_CHECK(f.size(0) > 0 && f.size(1) > 0, "kruzoo: empty factor ", i);
    ps.push_back(f.size(0));
    qs.push_back(f.size(1));
    hp.fvals.push_back(read_factor(f));
  }
  hp.ps = ps;
  hp.qs = qs;

  hp.ranges = group_ranges(ps, qs, min_last, lane_width);
  const int tail = lane_tail_len(ps, qs, lane_width);
  Plan& pl = hp.plan;
  pl.m = static_cast<int>(hp.ranges.size());
  TORCH_CHECK(pl.m <= kMaxGroups, "kruzoo: at most ", kMaxGroups, " factor groups supported, got ",
              pl.m);

  std::vector<double> packed;
  // Appends a rows x cols planar matrix (re block, im block) with entries m(r, c).
  auto push = [&](int64_t rows, int64_t cols, auto&& m) {
    const int64_t start = static_cast<int64_t>(packed.size());
    packed.resize(start + 2 * rows * cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const cd v = m(r, c);
        packed[start + r * cols + c] = v.real();
        packed[start + rows * cols + r * cols + c] = v.imag();
      }
    return start;
  };
  for (int g = 0; g < pl.m; ++g) {
    const auto [b, e] = hp.ranges[g];
    // G = F_b (x) ... (x) F_{e-1}  (torch.kron convention)
    std::vector<cd> G = hp.fvals[b];
    int64_t gp = ps[b], gq = qs[b];
    for (int i = b + 1; i < e; ++i) {
      const int64_t p2 = ps[i], q2 = qs[i];
      std::vector<cd> K(gp * p2 * gq * q2);
      for (int64_t r1 = 0; r1 < gp; ++r1)
        for (int64_t c1 = 0; c1 < gq; ++c1)
          for (int64_t r2 = 0; r2 < p2; ++r2)
            for (int64_t c2 = 0; c2 < q2; ++c2)
              K[(r1 * p2 + r2) * (gq * q2) + c1 * q2 + c2] = G[r1 * gq + c1] * hp.fvals[i][r2 * q2 + c2];
      G.swap(K);
      gp *= p2;
      gq *= q2;
    }
    Group& gr = pl.g[g];
    gr.p = static_cast<int>(gp);
    gr.q = static_cast<int>(gq);
    gr.off_f = push(gp, gq, [&](int64_t r, int64_t c) { return G[r * gq + c]; });
    gr.off_ft = push(gq, gp, [&](int64_t r, int64_t c) { return G[c * gq + r]; });
    gr.off_fh = push(gq, gp, [&](int64_t r, int64_t c) { return std::conj(G[c * gq + r]); });
    gr.off_fht = push(gp, gq, [&](int64_t r, int64_t c) { return std::conj(G[r * gq + c]); });
    gr.need_grad = 0;
    for (int i = b; i < e && !need_grad.empty(); ++i) gr.need_grad |= need_grad[i] ? 1 : 0;
    gr.lane_tail = 0;
    if (tail > 0 && g == pl.m - 1) {
      // Per-lane coefficients of each 2x2 factor F of the tail, applied at lane stride s
      // (the first factor is the most significant axis): lane l has bit = (l / s) & 1 and
      //   y[l] = F[bit, bit] x[l] + F[bit, 1-bit] x[l ^ s]            (forward)
      //   y[l] = conj(F[bit, bit]) x[l] + conj(F[1-bit, bit]) x[l ^ s]  (adjoint)
      // Stored per factor as 8 vectors: fwd diag re, im, fwd off re, im, adj diag re, im, adj off re, im.
      gr.lane_tail = e - b;
      gr.off_lane = static_cast<int64_t>(packed.size());
      const int64_t V = lane_width;
      for (int f = 0; f < e - b; ++f) {
        const int64_t stride = V >> (f + 1);
        const auto& F = hp.fvals[b + f];  // 2x2 row major
        auto bit = [&](int64_t l) { return (l / stride) & 1; };
        push(1, V, [&](int64_t, int64_t l) { return F[bit(l) * 2 + bit(l)]; });
        push(1, V, [&](int64_t, int64_t l) { return F[bit(l) * 2 + (1 - bit(l))]; });
        push(1, V, [&](int64_t, int64_t l) { return std::conj(F[bit(l) * 2 + bit(l)]); });
        push(1, V, [&](int64_t, int64_t l) { return std::conj(F[(1 - bit(l)) * 2 + bit(l)]); });
      }
    }
  }
  // Axis geometry: group g sees the state as (before, q_g, rest) with before = prod of the row
  // sizes of the groups already applied and rest = prod of the column sizes still to come.
  for (int g = 0; g < pl.m; ++g) {
    int64_t before = 1, rest = 1;
    for (int i = 0; i < g; ++i) before *= pl.g[i].p;
    for (int i = g + 1; i < pl.m; ++i) rest *= pl.g[i].q;
    pl.g[g].before = before;
    pl.g[g].rest = rest;
  }
  pl.n_in = inter_size(pl, 0);
  pl.n_out = inter_size(pl, pl.m);
  pl.max_sz = 0;
  for (int k = 0; k <= pl.m; ++k) pl.max_sz = std::max(pl.max_sz, inter_size(pl, k));
  at::Tensor t = at::empty({static_cast<int64_t>(packed.size())}, at::TensorOptions().dtype(dtype));
  AT_DISPATCH_FLOATING_TYPES(dtype, "kruzoo_pack", [&] {
    scalar_t* d = t.data_ptr<scalar_t>();
    for (size_t i = 0; i < packed.size(); ++i) d[i] = static_cast<scalar_t>(packed[i]);
  });
  hp.packed = device.is_cpu() ? t : t.to(device);
  return hp;
}

std::vector<at::Tensor> map_group_grads(const HostPlan& hp, at::TensorList factors,
                                        const std::vector<at::Tensor>& group_grads,
                                        const std::vector<bool>& need_grad) {
  using cd = std::complex<double>;
  std::vector<at::Tensor> out(factors.size());
  for (size_t g = 0; g < hp.ranges.size(); ++g) {
    const auto [b, e] = hp.ranges[g];
    const at::Tensor& gG = group_grads[g];
    if (!gG.defined()) continue;  // every factor of this group is frozen
    if (e - b == 1) {
      if (need_grad[b]) out[b] = at::view_as_real(gG.contiguous()).contiguous();
      continue;
    }
    // G = F_b (x) ... (x) F_{e-1}: G[(i_b..), (j_b..)] = prod_l F_l[i_l, j_l], so (complex
    // autograd convention, holomorphic product) dL/dF_t = sum over the other indices of
    // dL/dG * conj(prod_{l != t} F_l[i_l, j_l]).  Small: plain loops on the host.
    const at::Tensor gd = at::view_as_real(gG.to(at::kCPU).to(at::kComplexDouble).contiguous()).contiguous();
    const double* gp = gd.data_ptr<double>();
    const int n = e - b;
    int64_t P = 1, Q = 1;
    for (int l = b; l < e; ++l) {
      P *= hp.ps[l];
      Q *= hp.qs[l];
    }
    std::vector<std::vector<cd>> acc(n);
    for (int l = 0; l < n; ++l) acc[l].assign(hp.ps[b + l] * hp.qs[b + l], cd(0, 0));
    std::vector<int64_t> ii(n), jj(n);
    for (int64_t I = 0; I < P; ++I) {
      int64_t r = I;
      for (int l = n - 1; l >= 0; --l) {
        ii[l] = r % hp.ps[b + l];
        r /= hp.ps[b + l];
      }
      for (int64_t J = 0; J < Q; ++J) {
        int64_t c = J;
        for (int l = n - 1; l >= 0; --l) {
          jj[l] = c % hp.qs[b + l];
          c /= hp.qs[b + l];
        }
        const cd gv(gp[2 * (I * Q + J)], gp[2 * (I * Q + J) + 1]);
        for (int t = 0; t < n; ++t) {
          if (!need_grad[b + t]) continue;
          cd prod = gv;
          for (int l = 0; l < n; ++l)
            if (l != t) prod *= std::conj(hp.fvals[b + l][ii[l] * hp.qs[b + l] + jj[l]]);
          acc[t][ii[t] * hp.qs[b + t] + jj[t]] += prod;
        }
      }
    }
    for (int t = 0; t < n; ++t) {
      if (!need_grad[b + t]) continue;
      at::Tensor r = at::empty({hp.ps[b + t], hp.qs[b + t], 2}, at::TensorOptions().dtype(at::kDouble));
      double* rp = r.data_ptr<double>();
      for (size_t k = 0; k < acc[t].size(); ++k) {
        rp[2 * k] = acc[t][k].real();
        rp[2 * k + 1] = acc[t][k].imag();
      }
      out[b + t] = r.to(factors[b + t].options());
    }
  }
  for (size_t i = 0; i < factors.size(); ++i)
    if (!out[i].defined()) out[i] = at::empty({0}, factors[i].options());
  return out;
}

}  // namespace kru
