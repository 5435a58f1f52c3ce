#include "builder/timing_cache.h"

#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace kiln::builder {
namespace {

constexpr const char* kFormat = "kiln-timing-cache";
constexpr int kVersion = 1;

/// Floats with every bit that matters (9 significant digits round-trip an f32).
std::string float_str(float f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", f);
  return buf;
}

template <typename T, typename F>
std::string list_str(const std::vector<T>& v, F str) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + str(v[i]);
  return s + "]";
}

std::string attribute_str(const ir::Attribute& a) {
  using K = ir::Attribute::Kind;
  auto int_str = [](int64_t i) { return std::to_string(i); };
  auto tensor_str = [](const HostTensor& t) {
    // Values matter for attribute tensors (e.g. ConstantOfShape's value): hash them.
    char h[20];
    std::snprintf(h, sizeof h, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits(t.raw(), t.bytes())));
    return std::string(dtype_name(t.dtype())) + dims_to_string(t.dims()) + "#" + h;
  };
  switch (a.kind) {
    case K::kFloat: return float_str(a.f);
    case K::kInt: return int_str(a.i);
    case K::kString: return "\"" + a.s + "\"";
    case K::kFloats: return list_str(a.floats, float_str);
    case K::kInts: return list_str(a.ints, int_str);
    case K::kStrings: return list_str(a.strings, [](const std::string& s) { return "\"" + s + "\""; });
    case K::kTensor: return tensor_str(a.t);
    case K::kTensors: return list_str(a.tensors, tensor_str);
    default: return attribute_kind_name(a.kind);  // subgraphs: such nodes are not tuned
  }
}

std::string value_str(const ir::Value* v) {
  if (!v) return "-";
  std::string s = std::string(dtype_name(v->dtype)) + "[" + v->shape.to_string() + "]";
  if (v->layout) s += "@" + std::to_string(v->layout);
  if (v->constant) s += "c";
  return s;
}

}  // namespace

std::string layer_signature(const ir::Node& n, const std::string& extra) {
  std::string s = n.op_type + "|" + (n.domain.empty() ? "ai.onnx" : n.domain) + "|" +
                  std::to_string(n.opset) + "|";
  bool first = true;
  for (const auto& [name, a] : n.attrs) {  // std::map: sorted, so the key is canonical
    s += (first ? "" : ";") + name + "=" + attribute_str(a);
    first = false;
  }
  s += "|in:";
  for (size_t i = 0; i < n.inputs.size(); ++i) s += (i ? "," : "") + value_str(n.inputs[i]);
  s += "|out:";
  for (size_t i = 0; i < n.outputs.size(); ++i) s += (i ? "," : "") + value_str(n.outputs[i]);
  if (!extra.empty()) s += "|" + extra;
  return s;
}

TimingCache::TimingCache(std::string environment) : environment_(std::move(environment)) {}

Result<TimingCache> TimingCache::load(const std::string& path, const std::string& environment,
                                      Logger& logger) {
  TimingCache cache(environment);
  std::ifstream f(path, std::ios::binary);
  if (!f) return cache;  // first build with this file: it is written at the end
  std::stringstream text;
  text << f.rdbuf();
  auto bad = [&](const std::string& what) {
    return Status(ErrorCode::kTimingCacheInvalid, "timing cache '" + path + "': " + what,
                  "delete the file; the next build times every layer again and rewrites it");
  };
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not JSON");
  if (j.value("format", "") != kFormat) return bad("not a kiln timing cache (no \"format\": \"" +
                                                   std::string(kFormat) + "\")");
  if (j.value("version", 0) != kVersion)
    return bad("version " + j.value("version", nlohmann::json(0)).dump() + ", this kiln reads " +
               std::to_string(kVersion));
  if (!j.contains("environment") || !j["environment"].is_object() || !j.contains("entries") ||
      !j["entries"].is_object())
    return bad("no \"environment\" or \"entries\" object");
  if (j["environment"] != nlohmann::json::parse(environment)) {
    logger.log(LogLevel::kWarning, "timing cache '" + path + "' was written for " +
                                       j["environment"].dump() + ", this build runs on " +
                                       environment + ": its " +
                                       std::to_string(j["entries"].size()) +
                                       " entries are ignored and the file is rewritten");
    return cache;
  }
  try {
    for (const auto& [key, e] : j["entries"].items()) {
      if (!e.is_object() || !e.contains("tactic") || !e["tactic"].is_string() ||
          !e.contains("params") || !e["params"].is_string())
        return bad("entry '" + key + "' has no tactic or params");
      TimingEntry t;
      t.tactic = e["tactic"].get<std::string>();
      t.params = e["params"].get<std::string>();
      t.ms = e.value("ms", -1.0f);
      t.candidates = e.value("candidates", 0);
      t.source = e.value("source", 0u);
      cache.entries_[key] = std::move(t);
    }
  } catch (const nlohmann::json::exception& ex) {  // a field of the wrong type
    return bad(ex.what());
  }
  return cache;
}

Status TimingCache::save(const std::string& path) const {
  nlohmann::json entries = nlohmann::json::object();
  for (const auto& [key, e] : entries_)
    entries[key] = {{"tactic", e.tactic}, {"params", e.params}, {"ms", e.ms},
                    {"candidates", e.candidates}, {"source", e.source}};
  nlohmann::json j = {{"format", kFormat}, {"version", kVersion},
                      {"environment", nlohmann::json::parse(environment_)},
                      {"entries", entries}};
  const std::string text = j.dump(1) + "\n";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f || !f.write(text.data(), static_cast<std::streamsize>(text.size())))
    return Status(ErrorCode::kIoError, "cannot write timing cache '" + path + "'",
                  "check that the directory exists and is writable");
  return Status::ok();
}

const TimingEntry* TimingCache::find(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  return &it->second;
}

}  // namespace kiln::builder
