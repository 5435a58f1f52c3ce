#include "builder/profiles.h"

#include <string>

namespace kiln::builder {
namespace {

Status invalid(const std::string& msg, const std::string& hint) {
  return Status(ErrorCode::kProfileInvalid, msg, hint);
}

std::string input_list(const ir::Graph& g) {
  std::string s;
  for (const auto* v : g.inputs) s += (s.empty() ? "" : ", ") + v->name + " " + v->shape.to_string();
  return s;
}

/// One profile's entry for input `v`, checked. `which` names the profile in messages.
Status check_range(const ir::Value& v, const OptimizationProfile::Range& r, const std::string& which) {
  const std::string& name = v.name;
  const size_t rank = v.shape.rank();
  for (const auto* dims : {&r.min, &r.opt, &r.max})
    if (dims->size() != rank)
      return invalid(which + " gives input '" + name + "' " + std::to_string(dims->size()) +
                         " dims, but it has rank " + std::to_string(rank) + " (" + v.shape.to_string() + ")",
                     "give one value per dimension in --min-shapes, --opt-shapes and --max-shapes, e.g. " + name +
                         ":" + dims_to_string(std::vector<int64_t>(rank, 1)));
  for (size_t d = 0; d < rank; ++d) {
    const std::string at = "input '" + name + "' dimension " + std::to_string(d);
    if (r.min[d] < 0)
      return invalid(which + ": " + at + " has min " + std::to_string(r.min[d]), "dims are >= 0");
    if (r.min[d] > r.opt[d] || r.opt[d] > r.max[d])
      return invalid(which + ": " + at + " has min " + std::to_string(r.min[d]) + ", opt " +
                         std::to_string(r.opt[d]) + ", max " + std::to_string(r.max[d]) +
                         "; they must satisfy min <= opt <= max",
                     "opt is the shape the engine is tuned for; it lies inside [min, max]");
    const Dim& md = v.shape.dims[d];
    if (md.is_known() && (r.min[d] != md.value || r.max[d] != md.value))
      return invalid(which + ": " + at + " is fixed to " + std::to_string(md.value) + " by the model, the profile gives [" +
                         std::to_string(r.min[d]) + ", " + std::to_string(r.max[d]) + "]",
                     "only the model's dynamic dims (" + v.shape.to_string() + ") can vary; give " +
                         std::to_string(md.value) + " for this dimension");
  }
  return Status::ok();
}

}  // namespace

std::map<std::string, std::vector<int64_t>> profile_dims(const OptimizationProfile& p, ProfilePoint point) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& [name, r] : p.inputs)
    out[name] = point == ProfilePoint::kMin ? r.min : point == ProfilePoint::kOpt ? r.opt : r.max;
  return out;
}

Result<std::vector<OptimizationProfile>> apply_profiles(ir::Graph& g, const BuilderConfig& cfg) {
  if (cfg.profiles.empty()) return std::vector<OptimizationProfile>{};
  if (!cfg.input_shapes.empty())
    return Status(ErrorCode::kInvalidArgument, "both concrete input shapes and optimisation profiles were given",
                  "--shapes builds a static plan, --min-shapes/--opt-shapes/--max-shapes a dynamic one: use one");
  for (size_t p = 0; p < cfg.profiles.size(); ++p) {
    const std::string which = "optimisation profile " + std::to_string(p);
    for (const auto& [name, r] : cfg.profiles[p].inputs) {
      const ir::Value* v = nullptr;
      for (const auto* in : g.inputs)
        if (in->name == name) v = in;
      if (!v)
        return invalid(which + " names input '" + name + "', which the model does not have",
                       "the model's inputs are: " + input_list(g));
      if (!v->shape.rank_known)
        return invalid(which + ": input '" + name + "' has an unknown rank in the model",
                       "re-export the model with a known input rank");
      KILN_RETURN_IF_ERROR(check_range(*v, r, which));
    }
    for (const auto* v : g.inputs)
      if (!v->shape.is_static() && !cfg.profiles[p].inputs.count(v->name))
        return invalid(which + " does not cover dynamic input '" + v->name + "' " + v->shape.to_string(),
                       "give every dynamic input in --min-shapes, --opt-shapes and --max-shapes, e.g. " + v->name +
                           ":" + dims_to_string(std::vector<int64_t>(v->shape.rank(), 1)));
  }
  // Apply: dims fixed by every profile become concrete; the others are named.
  for (auto* v : g.inputs) {
    if (v->shape.is_static()) continue;
    for (size_t d = 0; d < v->shape.rank(); ++d) {
      Dim& dim = v->shape.dims[d];
      if (dim.is_known()) continue;
      bool fixed = true;
      const int64_t value = cfg.profiles[0].inputs.at(v->name).min[d];
      for (const auto& p : cfg.profiles) {
        const auto& r = p.inputs.at(v->name);
        fixed = fixed && r.min[d] == value && r.max[d] == value;
      }
      if (fixed)
        dim = Dim(value);
      else if (!dim.is_symbolic())
        dim = Dim::sym(v->name + "_d" + std::to_string(d));
    }
  }
  for (const auto* v : g.inputs)
    if (!v->shape.is_static()) return cfg.profiles;
  return std::vector<OptimizationProfile>{};  // every dynamic dim was fixed: a static plan
}

}  // namespace kiln::builder
