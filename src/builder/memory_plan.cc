#include "builder/memory_plan.h"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <vector>

namespace kiln::builder {
namespace {

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

struct Buffer {
  uint64_t size = 0;
  int first = 0, last = 0;  // node indices: written at `first`, last read at `last`
  uint64_t offset = 0;
  bool external = false;    // graph input/output/constant: not in the arena
  int last_reader = -1;     // last node reading any tensor placed here so far (whole graph)
};

}  // namespace

Result<MemoryPlan> plan_memory(ir::Graph& g, const MemoryPlanRules& rules) {
  MemoryPlan plan;
  std::vector<Buffer> bufs;
  std::unordered_map<const ir::Value*, int> buf_of;
  auto bytes_of = [](const ir::Value* v) -> Result<uint64_t> {
    if (!v->shape.is_static())
      return Status(ErrorCode::kDynamicShapeUnresolved,
                    "tensor '" + v->name + "' has a dynamic shape " + v->shape.to_string() + " after shape inference",
                    "give concrete input shapes with --shapes; dynamic shapes on the GPU need optimisation profiles");
    int64_t n = 1;
    for (const auto& d : v->shape.dims) n *= d.value;
    return static_cast<uint64_t>(n) * dtype_size(v->dtype);
  };
  const auto& nodes = g.nodes();
  const int n_nodes = static_cast<int>(nodes.size());
  // Last node reading each tensor, for the in-place check below.
  std::unordered_map<const ir::Value*, int> last_read;
  for (int i = 0; i < n_nodes; ++i) {
    for (const ir::Value* v : nodes[i]->inputs)
      if (v) last_read[v] = i;
    for (const ir::Value* v : nodes[i]->implicit_inputs) last_read[v] = i;
  }
  auto place = [&](const ir::Value* v, int b) {
    buf_of[v] = b;
    auto it = last_read.find(v);
    if (it != last_read.end()) bufs[b].last_reader = std::max(bufs[b].last_reader, it->second);
  };
  auto external = [&](const ir::Value* v) {
    int id = static_cast<int>(bufs.size());
    bufs.push_back({});
    bufs.back().external = true;
    buf_of[v] = id;
  };
  for (auto* v : g.inputs) external(v);
  for (const auto& v : g.values())
    if (v->constant) external(v.get());

  for (int i = 0; i < n_nodes; ++i) {
    const ir::Node& n = *nodes[i];
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const ir::Value* in = n.inputs[k];
      if (!in) continue;
      auto it = buf_of.find(in);
      if (it == buf_of.end())
        return Status(ErrorCode::kInternal, "memory planner: '" + in->name + "' is read before it is written", "",
                      n.loc());
      Buffer& b = bufs[it->second];
      b.last = std::max(b.last, i);
    }
    for (const ir::Value* in : n.implicit_inputs) {
      auto it = buf_of.find(in);
      if (it != buf_of.end()) bufs[it->second].last = std::max(bufs[it->second].last, i);
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const ir::Value* out = n.outputs[k];
      if (!out) continue;
      KILN_ASSIGN_OR_RETURN(uint64_t size, bytes_of(out));
      plan.naive_bytes += (k == 0 && rules.is_alias(n)) || g.is_output(out) ? 0 : size;
      if (g.is_output(out)) {  // the caller's buffer
        external(out);
        continue;
      }
      if (k == 0 && n.input(0) && rules.is_alias(n)) {
        const int b = buf_of.at(n.input(0));
        place(out, b);
        bufs[b].size = std::max(bufs[b].size, size);
        bufs[b].last = std::max(bufs[b].last, i);
        continue;
      }
      if (k == 0) {
        // In place: reuse an input's buffer when this node is the last reader of every
        // tensor in it (views of it placed later are read later, so they count too).
        const int src = rules.inplace_input(n);
        if (src >= 0 && n.input(src)) {
          const int b = buf_of.at(n.input(src));
          if (!bufs[b].external && bufs[b].size == size && bufs[b].last_reader <= i) {
            place(out, b);
            continue;
          }
        }
      }
      bufs.push_back({size, i, i, 0, false});
      place(out, static_cast<int>(bufs.size()) - 1);
    }
  }

  // Greedy by size, best-fit gap among buffers alive at the same time.
  std::vector<int> order;
  for (int b = 0; b < static_cast<int>(bufs.size()); ++b)
    if (!bufs[b].external) order.push_back(b);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return bufs[a].size > bufs[b].size; });
  std::vector<int> placed;
  for (int b : order) {
    Buffer& cur = bufs[b];
    const uint64_t need = align_up(std::max<uint64_t>(cur.size, 1), rules.alignment);
    std::vector<int> live;
    for (int p : placed)
      if (bufs[p].first <= cur.last && cur.first <= bufs[p].last) live.push_back(p);
    std::sort(live.begin(), live.end(), [&](int a, int c) { return bufs[a].offset < bufs[c].offset; });
    uint64_t prev_end = 0, best = 0, best_gap = std::numeric_limits<uint64_t>::max();
    bool found = false;
    for (int p : live) {
      if (bufs[p].offset > prev_end) {
        const uint64_t gap = bufs[p].offset - prev_end;
        if (gap >= need && gap < best_gap) {
          best = prev_end;
          best_gap = gap;
          found = true;
        }
      }
      prev_end = std::max(prev_end, bufs[p].offset + align_up(std::max<uint64_t>(bufs[p].size, 1), rules.alignment));
    }
    cur.offset = found ? best : prev_end;
    plan.arena_bytes = std::max(plan.arena_bytes, cur.offset + need);
    placed.push_back(b);
  }
  plan.buffers = static_cast<int>(order.size());
  for (const auto& v : g.values()) {
    auto it = buf_of.find(v.get());
    v->mem_offset = (it == buf_of.end() || bufs[it->second].external) ? -1 : static_cast<int64_t>(bufs[it->second].offset);
  }
  return plan;
}

}  // namespace kiln::builder
