#include "kru_plan.h"

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

HostPlan make_plan(at::TensorList factors, const std::vector<bool>& need_grad, int64_t min_last,
                   int64_t lane_width) {
  TORCH_CHECK(!factors.empty(), "kruzoo: need at least one factor");
  TORCH_CHECK(need_grad.empty() || need_grad.size() == factors.size(),
              "kruzoo: factor_needs_grad has ", need_grad.size(), " entries for ", factors.size(),
              " factors");
  const auto dtype = factors[0].scalar_type();
  const auto device = factors[0].device();
  std::vector<int64_t> ps, qs;
  std::vector<at::Tensor> fc;
  for (size_t i = 0; i < factors.size(); ++i) {
    const auto& f = factors[i];
    check_pair(f, "factor", 3);
    TORCH_CHECK(f.scalar_type() == dtype && f.device() == device,
                "kruzoo: all factors must share dtype and device; factor ", i, " is ",
                f.scalar_type(), " on ", f.device());
    TORCH_CHECK(f.size(0) > 0 && f.size(1) > 0, "kruzoo: empty factor ", i);
    ps.push_back(f.size(0));
    qs.push_back(f.size(1));
    fc.push_back(at::view_as_complex(f.contiguous()));
  }

  HostPlan hp;
  hp.ranges = group_ranges(ps, qs, min_last, lane_width);
  const int tail = lane_tail_len(ps, qs, lane_width);
  Plan& pl = hp.plan;
  pl.m = static_cast<int>(hp.ranges.size());
  TORCH_CHECK(pl.m <= kMaxGroups, "kruzoo: at most ", kMaxGroups, " factor groups supported, got ",
              pl.m);

  std::vector<at::Tensor> pieces;
  int64_t off = 0;
  auto push = [&](const at::Tensor& re, const at::Tensor& im) {
    const int64_t start = off;
    pieces.push_back(re.contiguous().reshape(-1));
    pieces.push_back(im.contiguous().reshape(-1));
    off += 2 * re.numel();
    return start;
  };
  for (int g = 0; g < pl.m; ++g) {
    const auto [b, e] = hp.ranges[g];
    at::Tensor G = fc[b];
    for (int i = b + 1; i < e; ++i) G = at::kron(G, fc[i]);
    hp.group_c.push_back(G);
    Group& gr = pl.g[g];
    gr.p = static_cast<int>(G.size(0));
    gr.q = static_cast<int>(G.size(1));
    const at::Tensor re = at::real(G), im = at::imag(G);
    gr.off_f = push(re, im);
    gr.off_ft = push(re.t(), im.t());
    gr.off_fh = push(re.t(), -im.t());
    gr.off_fht = push(re, -im);
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
      gr.off_lane = off;
      const int64_t V = lane_width;
      for (int f = 0; f < e - b; ++f) {
        const int64_t stride = V >> (f + 1);
        const at::Tensor bits = at::arange(V, at::TensorOptions().dtype(at::kLong).device(device)).div(stride, "floor").remainder(2);
        const at::Tensor nbits = 1 - bits;
        const at::Tensor F = fc[b + f];
        const at::Tensor d = F.index({bits, bits});
        const at::Tensor o = F.index({bits, nbits});
        const at::Tensor da = d.conj();
        const at::Tensor oa = F.index({nbits, bits}).conj();
        for (const at::Tensor& c : {d, o, da, oa}) {
          const at::Tensor cc = c.resolve_conj();
          push(at::real(cc), at::imag(cc));
        }
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
  hp.packed = at::cat(pieces);
  return hp;
}

std::vector<at::Tensor> map_group_grads(const HostPlan& hp, at::TensorList factors,
                                        const std::vector<at::Tensor>& group_grads,
                                        const std::vector<bool>& need_grad) {
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
    // autograd convention, holomorphic product) dL/dF_l = sum over the other indices of
    // dL/dG * conj(prod_{l' != l} F_l'[i_l', j_l']).  One einsum per factor that needs it.
    const int n = e - b;
    TORCH_CHECK(n <= 26, "kruzoo: a group of more than 26 factors");
    std::vector<int64_t> shape;
    for (int l = b; l < e; ++l) shape.push_back(factors[l].size(0));
    for (int l = b; l < e; ++l) shape.push_back(factors[l].size(1));
    const at::Tensor gv = gG.reshape(shape);
    auto row = [](int l) { return static_cast<char>('a' + l); };
    auto col = [](int l) { return static_cast<char>('A' + l); };
    std::string all;
    for (int l = 0; l < n; ++l) all += row(l);
    for (int l = 0; l < n; ++l) all += col(l);
    for (int t = b; t < e; ++t) {
      if (!need_grad[t]) continue;
      std::string eq = all;
      std::vector<at::Tensor> ops{gv};
      for (int l = b; l < e; ++l) {
        if (l == t) continue;
        eq += ',';
        eq += row(l - b);
        eq += col(l - b);
        ops.push_back(at::view_as_complex(factors[l].contiguous()).conj().resolve_conj());
      }
      eq += "->";
      eq += row(t - b);
      eq += col(t - b);
      out[t] = at::view_as_real(at::einsum(eq, ops).contiguous()).contiguous();
    }
  }
  for (size_t i = 0; i < factors.size(); ++i)
    if (!out[i].defined()) out[i] = at::empty({0}, factors[i].options());
  return out;
}

}  // namespace kru
