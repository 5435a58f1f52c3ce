#include "engine/plan.h"

#include <flatbuffers/flatbuffers.h>
#include <xxhash.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "plan_generated.h"

namespace kiln::plan {
namespace {

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// ---- writing ----------------------------------------------------------------------

class Writer {
 public:
  flatbuffers::FlatBufferBuilder fbb{1 << 16};
  std::vector<std::pair<const HostTensor*, uint64_t>> blobs;  // tensor, offset in weights
  uint64_t weights_size = 0;

  flatbuffers::Offset<fb::TensorData> tensor(const HostTensor& t) {
    uint64_t off = align_up(weights_size, kWeightAlign);
    weights_size = off + t.bytes();
    blobs.emplace_back(&t, off);
    return fb::CreateTensorData(fbb, static_cast<uint8_t>(t.dtype()), fbb.CreateVector(t.dims()), off, t.bytes());
  }

  flatbuffers::Offset<fb::GraphDef> graph(const ir::Graph& g) {
    std::unordered_map<const ir::Value*, int> index;
    std::vector<flatbuffers::Offset<fb::ValueDef>> values;
    for (const auto& v : g.values()) {
      index[v.get()] = static_cast<int>(values.size());
      std::vector<flatbuffers::Offset<fb::Dim>> dims;
      for (const auto& d : v->shape.dims)
        dims.push_back(fb::CreateDim(fbb, d.value, d.symbol.empty() ? 0 : fbb.CreateString(d.symbol)));
      auto name = fbb.CreateString(v->name);
      auto dv = fbb.CreateVector(dims);
      flatbuffers::Offset<fb::TensorData> c = v->constant ? tensor(*v->constant) : 0;
      values.push_back(fb::CreateValueDef(fbb, name, static_cast<uint8_t>(v->dtype), v->shape.rank_known, dv, c,
                                          v->mem_offset, v->layout));
    }
    auto ids = [&](const std::vector<ir::Value*>& vs) {
      std::vector<int> out;
      for (auto* v : vs) out.push_back(v ? index.at(v) : -1);
      return fbb.CreateVector(out);
    };
    std::vector<flatbuffers::Offset<fb::NodeDef>> nodes;
    for (const auto& n : g.nodes()) {
      std::vector<flatbuffers::Offset<fb::Attr>> attrs;
      for (const auto& [k, a] : n->attrs) attrs.push_back(attr(k, a));
      auto name = fbb.CreateString(n->name), op = fbb.CreateString(n->op_type), dom = fbb.CreateString(n->domain);
      auto in = ids(n->inputs), out = ids(n->outputs), imp = ids(n->implicit_inputs);
      auto av = fbb.CreateVector(attrs);
      auto tac = fbb.CreateString(n->tactic), tac_params = fbb.CreateString(n->tactic_params);
      auto art = n->tactic_artifact.empty() ? 0 : fbb.CreateVector(n->tactic_artifact);
      nodes.push_back(fb::CreateNodeDef(fbb, name, op, dom, n->opset, in, out, imp, av, tac, tac_params,
                                        n->tactic_ms, art, n->tactic_source));
    }
    auto name = fbb.CreateString(g.name);
    auto vv = fbb.CreateVector(values);
    auto nv = fbb.CreateVector(nodes);
    auto in = ids(g.inputs), out = ids(g.outputs), cap = ids(g.captures);
    return fb::CreateGraphDef(fbb, name, vv, nv, in, out, cap);
  }

  flatbuffers::Offset<fb::Attr> attr(const std::string& key, const ir::Attribute& a) {
    auto name = fbb.CreateString(key);
    auto s = fbb.CreateString(a.s);
    auto floats = fbb.CreateVector(a.floats);
    auto ints = fbb.CreateVector(a.ints);
    auto strings = fbb.CreateVectorOfStrings(a.strings);
    flatbuffers::Offset<fb::TensorData> t = a.kind == ir::Attribute::Kind::kTensor ? tensor(a.t) : 0;
    std::vector<flatbuffers::Offset<fb::TensorData>> ts;
    for (const auto& x : a.tensors) ts.push_back(tensor(x));
    auto tv = fbb.CreateVector(ts);
    flatbuffers::Offset<fb::GraphDef> g = a.g ? graph(*a.g) : 0;
    std::vector<flatbuffers::Offset<fb::GraphDef>> gs;
    for (const auto& x : a.graphs) gs.push_back(graph(*x));
    auto gv = fbb.CreateVector(gs);
    return fb::CreateAttr(fbb, name, static_cast<uint8_t>(a.kind), a.f, a.i, s, floats, ints, strings, t, tv, g, gv);
  }
};

// ---- reading ----------------------------------------------------------------------

Status corrupt(const std::string& what) {
  return Status(ErrorCode::kPlanCorrupt, "plan is corrupt: " + what,
                "rebuild the plan with `kiln build`, or copy the file again");
}

class Reader {
 public:
  Reader(const uint8_t* weights, uint64_t weights_size, std::shared_ptr<void> storage)
      : weights_(weights), weights_size_(weights_size), storage_(std::move(storage)) {}

  Result<HostTensor> tensor(const fb::TensorData* t) {
    if (!t || !t->dims()) return corrupt("tensor without dims");
    auto dt = static_cast<DataType>(t->dtype());
    if (dtype_size(dt) == 0) return corrupt("tensor with unknown dtype");
    std::vector<int64_t> dims(t->dims()->begin(), t->dims()->end());
    int64_t n = 1;
    for (auto d : dims) {
      if (d < 0 || (d > 0 && n > (int64_t{1} << 48) / d)) return corrupt("tensor with bad dims");
      n *= d;
    }
    if (static_cast<uint64_t>(n) * dtype_size(dt) != t->size() || t->offset() > weights_size_ ||
        t->size() > weights_size_ - t->offset())
      return corrupt("tensor reference outside the weight section");
    return HostTensor::wrap(dt, std::move(dims), const_cast<uint8_t*>(weights_ + t->offset()), storage_);
  }

  Status graph(const fb::GraphDef* gd, ir::Graph& g) {
    if (!gd || !gd->values() || !gd->nodes()) return corrupt("graph without values or nodes");
    g.name = gd->name() ? gd->name()->str() : "";
    std::vector<ir::Value*> values;
    for (const auto* vd : *gd->values()) {
      Shape s;
      s.rank_known = vd->rank_known();
      if (vd->dims())
        for (const auto* d : *vd->dims()) s.dims.push_back(d->value() >= 0 ? Dim(d->value()) : Dim::sym(d->symbol() ? d->symbol()->str() : ""));
      ir::Value* v = g.add_value(vd->name() ? vd->name()->str() : "", static_cast<DataType>(vd->dtype()), s);
      if (vd->constant()) {
        KILN_ASSIGN_OR_RETURN(HostTensor t, tensor(vd->constant()));
        v->constant = std::make_shared<const HostTensor>(std::move(t));
      }
      v->mem_offset = vd->mem_offset();
      v->layout = vd->layout();
      values.push_back(v);
    }
    auto ids = [&](const flatbuffers::Vector<int32_t>* v, std::vector<ir::Value*>& out, bool allow_none) -> Status {
      if (!v) return Status::ok();
      for (int32_t i : *v) {
        if (i == -1 && allow_none) { out.push_back(nullptr); continue; }
        if (i < 0 || static_cast<size_t>(i) >= values.size()) return corrupt("value index out of range");
        out.push_back(values[i]);
      }
      return Status::ok();
    };
    for (const auto* nd : *gd->nodes()) {
      std::vector<ir::Value*> in, out, imp;
      KILN_RETURN_IF_ERROR(ids(nd->inputs(), in, true));
      KILN_RETURN_IF_ERROR(ids(nd->outputs(), out, true));
      KILN_RETURN_IF_ERROR(ids(nd->implicit_inputs(), imp, false));
      ir::Node* n = g.add_node(nd->op_type() ? nd->op_type()->str() : "", nd->name() ? nd->name()->str() : "",
                               in, out, nd->domain() ? nd->domain()->str() : "", nd->opset());
      n->implicit_inputs = imp;
      if (nd->tactic()) n->tactic = nd->tactic()->str();
      if (nd->tactic_params()) n->tactic_params = nd->tactic_params()->str();
      n->tactic_ms = nd->tactic_ms();
      n->tactic_source = nd->tactic_source();
      if (nd->tactic_artifact()) n->tactic_artifact.assign(nd->tactic_artifact()->begin(), nd->tactic_artifact()->end());
      if (nd->attrs())
        for (const auto* ad : *nd->attrs()) {
          ir::Attribute a;
          KILN_RETURN_IF_ERROR(attr(ad, a));
          n->attrs[ad->name() ? ad->name()->str() : ""] = std::move(a);
        }
    }
    KILN_RETURN_IF_ERROR(ids(gd->inputs(), g.inputs, false));
    KILN_RETURN_IF_ERROR(ids(gd->outputs(), g.outputs, false));
    KILN_RETURN_IF_ERROR(ids(gd->captures(), g.captures, false));
    return Status::ok();
  }

  Status attr(const fb::Attr* ad, ir::Attribute& a) {
    if (ad->kind() > static_cast<uint8_t>(ir::Attribute::Kind::kGraphs)) return corrupt("bad attribute kind");
    a.kind = static_cast<ir::Attribute::Kind>(ad->kind());
    a.f = ad->f();
    a.i = ad->i();
    if (ad->s()) a.s = ad->s()->str();
    if (ad->floats()) a.floats.assign(ad->floats()->begin(), ad->floats()->end());
    if (ad->ints()) a.ints.assign(ad->ints()->begin(), ad->ints()->end());
    if (ad->strings()) for (const auto* s : *ad->strings()) a.strings.push_back(s->str());
    if (ad->tensor()) { KILN_ASSIGN_OR_RETURN(a.t, tensor(ad->tensor())); }
    if (ad->tensors())
      for (const auto* t : *ad->tensors()) { KILN_ASSIGN_OR_RETURN(HostTensor x, tensor(t)); a.tensors.push_back(std::move(x)); }
    if (ad->graph()) {
      a.g = std::make_shared<ir::Graph>();
      KILN_RETURN_IF_ERROR(graph(ad->graph(), *a.g));
    }
    if (ad->graphs())
      for (const auto* gd : *ad->graphs()) {
        auto sg = std::make_shared<ir::Graph>();
        KILN_RETURN_IF_ERROR(graph(gd, *sg));
        a.graphs.push_back(std::move(sg));
      }
    return Status::ok();
  }

 private:
  const uint8_t* weights_;
  uint64_t weights_size_;
  std::shared_ptr<void> storage_;
};

}  // namespace

std::vector<uint8_t> serialize(const ir::Graph& g, const PlanInfo& info) {
  Writer w;
  auto root = w.graph(g);
  std::vector<flatbuffers::Offset<fb::OpsetImport>> opsets;
  for (const auto& [d, v] : g.opset_imports) opsets.push_back(fb::CreateOpsetImport(w.fbb, w.fbb.CreateString(d), v));
  auto ov = w.fbb.CreateVector(opsets);
  std::vector<flatbuffers::Offset<fb::Profile>> profiles;
  for (const auto& prof : info.profiles) {
    std::vector<flatbuffers::Offset<fb::ProfileInput>> ins;
    for (const auto& [name, r] : prof.inputs)
      ins.push_back(fb::CreateProfileInput(w.fbb, w.fbb.CreateString(name), w.fbb.CreateVector(r.min),
                                           w.fbb.CreateVector(r.opt), w.fbb.CreateVector(r.max)));
    profiles.push_back(fb::CreateProfile(w.fbb, w.fbb.CreateVector(ins)));
  }
  auto pv = w.fbb.CreateVector(profiles);
  auto plan = fb::CreatePlan(w.fbb, w.fbb.CreateString(KILN_VERSION), w.fbb.CreateString(backend_name(info.backend)),
                             info.compute_capability, root, ov, w.weights_size, w.fbb.CreateString(info.build_info),
                             info.arena_bytes, info.naive_bytes, w.fbb.CreateString(precision_name(info.precision)),
                             info.allow_tf32, pv);
  w.fbb.Finish(plan, "KLNP");
  size_t fb_size = w.fbb.GetSize();
  size_t weights_off = align_up(kPreambleBytes + fb_size, kWeightAlign);
  std::vector<uint8_t> out(weights_off + w.weights_size, 0);
  std::memcpy(out.data(), kMagic, 8);
  uint32_t ver = kFormatVersion;
  std::memcpy(out.data() + 8, &ver, 4);
  uint64_t fbs = fb_size;
  std::memcpy(out.data() + 16, &fbs, 8);
  std::memcpy(out.data() + kPreambleBytes, w.fbb.GetBufferPointer(), fb_size);
  for (const auto& [t, off] : w.blobs)
    if (t->bytes()) std::memcpy(out.data() + weights_off + off, t->raw(), t->bytes());
  uint64_t sum = XXH3_64bits(out.data() + kPreambleBytes, out.size() - kPreambleBytes);
  std::memcpy(out.data() + 24, &sum, 8);
  return out;
}

namespace {

/// Verifies and loads the plan in `storage` (`size` bytes, kWeightAlign-aligned), which
/// the loaded plan keeps: constants point into it.
Result<LoadedPlan> load(std::shared_ptr<void> storage, size_t size) {
  const auto* p = static_cast<const uint8_t*>(storage.get());
  if (size < 8 || std::memcmp(p, kMagic, 8) != 0)
    return Status(ErrorCode::kPlanBadMagic, "not a kiln plan (the file does not start with 'KILNPLAN')",
                  "build a plan with `kiln build model.onnx -o model.kiln`; ONNX files go to `kiln build`, not `kiln run`");
  if (size < kPreambleBytes) return corrupt("file is truncated (" + std::to_string(size) + " bytes)");
  uint32_t ver;
  uint64_t fb_size, sum;
  std::memcpy(&ver, p + 8, 4);
  std::memcpy(&fb_size, p + 16, 8);
  std::memcpy(&sum, p + 24, 8);
  if (ver != kFormatVersion)
    return Status(ErrorCode::kPlanVersion,
                  "plan format version " + std::to_string(ver) + " cannot be read by kiln " + KILN_VERSION +
                      " (reads format version " + std::to_string(kFormatVersion) + ")",
                  ver > kFormatVersion ? "the plan was built by a newer kiln: rebuild it with this version"
                                       : "rebuild the plan with this kiln version");
  if (fb_size > size - kPreambleBytes) return corrupt("file is truncated (header says more bytes than present)");
  if (XXH3_64bits(p + kPreambleBytes, size - kPreambleBytes) != sum)
    return corrupt("checksum mismatch (file truncated or modified)");
  LoadedPlan lp;
  lp.storage = std::move(storage);
  const auto* base = static_cast<const uint8_t*>(lp.storage.get());
  flatbuffers::Verifier verifier(base + kPreambleBytes, fb_size, 128, 10'000'000);
  if (!fb::VerifyPlanBuffer(verifier)) return corrupt("FlatBuffers verification failed");
  const fb::Plan* plan = fb::GetPlan(base + kPreambleBytes);
  size_t weights_off = align_up(kPreambleBytes + fb_size, kWeightAlign);
  if (weights_off + plan->weights_size() != size) return corrupt("weight section size does not match the file");
  lp.info.format_version = ver;
  lp.info.kiln_version = plan->kiln_version() ? plan->kiln_version()->str() : "";
  std::string backend = plan->backend() ? plan->backend()->str() : "";
  lp.info.backend = backend == "cuda" ? Backend::kCuda : Backend::kCpu;
  lp.info.compute_capability = plan->compute_capability();
  lp.info.build_info = plan->build_info() ? plan->build_info()->str() : "";
  lp.info.weights_bytes = plan->weights_size();
  lp.info.file_bytes = size;
  lp.info.weights_offset = weights_off;
  lp.info.arena_bytes = plan->arena_bytes();
  lp.info.naive_bytes = plan->naive_bytes();
  const std::string prec = plan->precision() ? plan->precision()->str() : "fp32";
  lp.info.precision = prec == "fp16" ? Precision::kFp16 : prec == "bf16" ? Precision::kBf16 : Precision::kFp32;
  lp.info.allow_tf32 = plan->allow_tf32();
  if (plan->profiles())
    for (const auto* pd : *plan->profiles()) {
      OptimizationProfile prof;
      if (pd->inputs())
        for (const auto* in : *pd->inputs()) {
          auto ints = [](const flatbuffers::Vector<int64_t>* v) {
            return v ? std::vector<int64_t>(v->begin(), v->end()) : std::vector<int64_t>{};
          };
          OptimizationProfile::Range r{ints(in->min()), ints(in->opt()), ints(in->max())};
          if (!in->name() || r.min.size() != r.opt.size() || r.min.size() != r.max.size())
            return corrupt("an optimisation profile entry is incomplete");
          prof.inputs[in->name()->str()] = std::move(r);
        }
      lp.info.profiles.push_back(std::move(prof));
    }
  lp.graph = std::make_unique<ir::Graph>();
  if (plan->opset_imports())
    for (const auto* o : *plan->opset_imports())
      lp.graph->opset_imports[o->domain() ? o->domain()->str() : ""] = o->version();
  Reader r(base + weights_off, plan->weights_size(), lp.storage);
  KILN_RETURN_IF_ERROR(r.graph(plan->graph(), *lp.graph));
  return lp;
}

}  // namespace

Result<LoadedPlan> deserialize(const void* data, size_t size) {
  std::shared_ptr<void> storage = aligned_alloc_shared(size, kWeightAlign);
  if (size) std::memcpy(storage.get(), data, size);
  return load(std::move(storage), size);
}

Result<LoadedPlan> deserialize_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return Status(ErrorCode::kIoError, "'" + path + "' is a directory, not a plan file", "check the path");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return Status(ErrorCode::kIoError, "cannot open plan file '" + path + "'", "check the path");
  const std::streamoff end = f.tellg();
  if (end < 0) return Status(ErrorCode::kIoError, "cannot read plan file '" + path + "'", "check the file");
  const size_t size = static_cast<size_t>(end);
  std::shared_ptr<void> storage = aligned_alloc_shared(size, kWeightAlign);
  f.seekg(0);
  // One read straight into the aligned storage the plan keeps: no copy of the weights.
  if (size && !f.read(static_cast<char*>(storage.get()), static_cast<std::streamsize>(size)))
    return Status(ErrorCode::kIoError, "cannot read plan file '" + path + "'", "check the file");
  return load(std::move(storage), size);
}

std::optional<PlanPeek> peek_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  uint8_t pre[kPreambleBytes];
  if (!f || !f.read(reinterpret_cast<char*>(pre), kPreambleBytes) || std::memcmp(pre, kMagic, 8) != 0)
    return std::nullopt;
  uint32_t ver;
  uint64_t fb_size;
  std::memcpy(&ver, pre + 8, 4);
  std::memcpy(&fb_size, pre + 16, 8);
  if (ver != kFormatVersion || fb_size > (uint64_t{1} << 32)) return std::nullopt;
  std::vector<uint8_t> fb(static_cast<size_t>(fb_size));
  if (!f.read(reinterpret_cast<char*>(fb.data()), static_cast<std::streamsize>(fb.size()))) return std::nullopt;
  flatbuffers::Verifier verifier(fb.data(), fb.size(), 128, 10'000'000);
  if (!fb::VerifyPlanBuffer(verifier)) return std::nullopt;
  const fb::Plan* plan = fb::GetPlan(fb.data());
  PlanPeek peek;
  peek.backend = plan->backend() && plan->backend()->str() == "cuda" ? Backend::kCuda : Backend::kCpu;
  if (plan->graph() && plan->graph()->nodes())
    for (const auto* n : *plan->graph()->nodes()) peek.tactic_sources |= n->tactic_source();
  return peek;
}

}  // namespace kiln::plan
