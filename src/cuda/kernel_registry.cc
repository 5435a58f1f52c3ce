// KernelRegistry, layout names and the host-side helpers of common.cuh.
#include <cstdio>
#include <cstdlib>

#include "cuda/kernel.h"
#include "cuda/kernels/common.cuh"

namespace kiln::cuda {

const char* layout_name(Layout l) { return l == Layout::kNhwc ? "nhwc" : "row-major"; }

KernelRegistry& KernelRegistry::instance() {
  static KernelRegistry r;
  return r;
}

void KernelRegistry::add(KernelEntry e) {
  auto key = std::make_pair(e.domain, e.op_type);
  if (entries_.count(key)) {
    std::fprintf(stderr, "kiln: duplicate CUDA kernel registration for %s\n", e.op_type.c_str());
    std::abort();
  }
  entries_.emplace(key, std::move(e));
}

const KernelEntry* KernelRegistry::find(const std::string& domain, const std::string& op_type) const {
  auto it = entries_.find({domain, op_type});
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<const KernelEntry*> KernelRegistry::all() const {
  std::vector<const KernelEntry*> v;
  for (const auto& [k, e] : entries_) v.push_back(&e);
  return v;
}

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

StridedIndex make_index(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  StridedIndex ix;
  ix.rank = static_cast<int>(dims.size());
  for (int i = 0; i < ix.rank && i < kMaxRank; ++i) {
    ix.dims[i] = dims[i];
    ix.strides[i] = strides[i];
  }
  return ix;
}

StridedIndex broadcast_index(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims) {
  const auto in_strides = row_major_strides(in_dims);
  std::vector<int64_t> strides(out_dims.size(), 0);
  const size_t off = out_dims.size() - in_dims.size();
  for (size_t i = 0; i < in_dims.size(); ++i)
    strides[off + i] = in_dims[i] == 1 ? 0 : in_strides[i];
  return make_index(out_dims, strides);
}

}  // namespace kiln::cuda
