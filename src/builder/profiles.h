// Optimisation profiles at build time: checked against the model's inputs, then applied
// to the graph (TensorRT's IOptimizationProfile semantics, with errors that name the
// input, the dimension and the values).
#pragma once

#include <vector>

#include "ir/graph.h"
#include "kiln/kiln.h"

namespace kiln::builder {

/// Checks cfg.profiles against g's inputs and applies them to g:
///  - a dimension that every profile fixes to one value (min == max) becomes concrete;
///  - a dynamic dimension without a name gets one ("<input>_d<axis>"), so that shape
///    inference can relate the dims derived from it.
/// Returns the profiles to store in the plan: empty when none were given or when every
/// input became static (a static plan). Errors: ProfileInvalid (an input the model does
/// not have, a wrong rank, a negative dim, min > opt or opt > max, a fixed dim of the
/// model changed, a dynamic input left out of a profile), InvalidArgument (both
/// input_shapes and profiles given).
Result<std::vector<OptimizationProfile>> apply_profiles(ir::Graph& g, const BuilderConfig& cfg);

/// Input dims of profile `p` at its min, opt or max point: name → dims.
enum class ProfilePoint { kMin, kOpt, kMax };
std::map<std::string, std::vector<int64_t>> profile_dims(const OptimizationProfile& p, ProfilePoint point);

}  // namespace kiln::builder
