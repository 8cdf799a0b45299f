// Host-side planning shared by the CPU and CUDA builds: validation, grouping of consecutive
// small factors into bigger ones, packing the grouped matrices in planar layout, and mapping
// the gradients of the grouped matrices back to the user's factors.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/List.h>

#include <complex>
#include <utility>
#include <vector>

#include "kru_math.h"

namespace kru {

struct HostPlan {
  Plan plan;
  at::Tensor packed;                        // planar matrices of all groups (real dtype, factors' device)
  std::vector<std::pair<int, int>> ranges;  // user factors [begin, end) of each group
  std::vector<std::vector<std::complex<double>>> fvals;  // user factors' values (host, row major)
  std::vector<int64_t> ps, qs;                            // user factors' shapes
};

// Which consecutive user factors form each group.  The last group is grown (up to 64x64) until
// both its sizes reach `min_last` (the row-vector kernel vectorises over it); the others are
// grouped greedily while both products stay <= `max_inner` (4x4 costs the same flops as two
// 2x2 and halves the passes over the state).  Environment overrides, read on every call:
// KRUZOO_FUSE=0 (no grouping), KRUZOO_FUSE_INNER, KRUZOO_FUSE_LAST.
// lane_width > 0 (CPU): if the last log2(lane_width) factors are all 2x2 they form a "lane tail"
// group (Group::lane_tail), applied inside one SIMD vector; KRUZOO_LANE_TAIL=0 disables it.
std::vector<std::pair<int, int>> group_ranges(const std::vector<int64_t>& ps,
                                              const std::vector<int64_t>& qs, int64_t min_last,
                                              int64_t lane_width = 0);

// Validates the real-pair factors ((p, q, 2) each, same dtype/device) and builds the plan.
// need_grad may be empty (no gradients needed).
HostPlan make_plan(at::TensorList factors, const std::vector<bool>& need_grad, int64_t min_last,
                   int64_t lane_width = 0);

// Gradients of the grouped matrices (complex (p, q), undefined if not computed) -> gradients of
// the user factors in real-pair layout (p, q, 2); an empty tensor for factors that need none.
std::vector<at::Tensor> map_group_grads(const HostPlan& hp, at::TensorList factors,
                                        const std::vector<at::Tensor>& group_grads,
                                        const std::vector<bool>& need_grad);

// The ops' bool[] arguments (factor_needs_grad) as a vector, and whether any is set.
std::vector<bool> to_vec(const c10::List<bool>& l);
bool any_of(const std::vector<bool>& a);

// Checks a real-pair tensor: dtype float/double, last dim 2, given rank.
void check_pair(const at::Tensor& t, const char* name, int64_t dim);

}  // namespace kru
