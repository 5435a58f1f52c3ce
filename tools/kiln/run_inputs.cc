// Input gathering for `kiln run` (see run_inputs.h).
#include "run_inputs.h"

#include <cmath>
#include <cstdlib>
#include <iostream>

#include "cli.h"
#include "io/image.h"
#include "io/npy.h"
#include "ir/graph.h"

namespace kiln::cli {
namespace {

Status bad_option(const std::string& flag, const std::string& value, const std::string& expected) {
  return Status(ErrorCode::kInvalidArgument, flag + " value '" + value + "' is malformed",
                "expected " + expected);
}

bool parse_double(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}

Result<float> parse_scale(const std::string& s) {
  const size_t slash = s.find('/');
  double num = 0, den = 1;
  bool ok = slash == std::string::npos
                ? parse_double(s, num)
                : parse_double(s.substr(0, slash), num) && parse_double(s.substr(slash + 1), den);
  if (!ok || den == 0) return bad_option("--scale", s, "a number or a fraction such as 1/255");
  return static_cast<float>(num / den);
}

// "0.485,0.456,0.406" or one value for every channel.
Result<std::array<float, 3>> parse_triple(const std::string& flag, const std::string& s) {
  std::vector<double> v;
  size_t start = 0;
  for (;;) {
    size_t comma = s.find(',', start);
    double x;
    if (!parse_double(
            s.substr(start, comma == std::string::npos ? std::string::npos : comma - start), x))
      return bad_option(flag, s, "one number or three separated by ',' (r,g,b)");
    v.push_back(x);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (v.size() != 1 && v.size() != 3)
    return bad_option(flag, s, "one number or three separated by ',' (r,g,b)");
  if (v.size() == 1) v = {v[0], v[0], v[0]};
  return std::array<float, 3>{static_cast<float>(v[0]), static_cast<float>(v[1]),
                              static_cast<float>(v[2])};
}

// "NAME=PATH" (split at the first '=').
Result<std::pair<std::string, std::string>> split_assignment(const std::string& flag,
                                                             const std::string& s) {
  const size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
    return bad_option(flag, s, "NAME=FILE, with NAME an engine input");
  return std::make_pair(s.substr(0, eq), s.substr(eq + 1));
}

const ir::Value* find_input(const Engine& e, const std::string& name) {
  for (const ir::Value* v : e.graph().inputs)
    if (v->name == name) return v;
  return nullptr;
}

std::string input_list(const Engine& e) {
  std::string s;
  for (const ir::Value* v : e.graph().inputs)
    s += (s.empty() ? "" : ", ") + v->name + " " + typed_shape(v->dtype, v->shape);
  return s;
}

Status unknown_input(const Engine& e, const std::string& flag, const std::string& name) {
  return Status(ErrorCode::kNotFound, flag + " names '" + name + "', which is not an engine input",
                "the engine's inputs are: " + input_list(e));
}

Result<io::ImagePreprocess> image_params(const ir::Value& in, const InputOptions& o) {
  io::ImagePreprocess p;
  const Shape& s = in.shape;
  auto dim = [&](size_t i) { return s.dims[i].is_known() ? s.dims[i].value : int64_t{-1}; };
  if (!s.rank_known || s.rank() != 4 || (dim(0) != -1 && dim(0) != 1) ||
      (dim(1) != -1 && dim(1) != 1 && dim(1) != 3))
    return Status(ErrorCode::kInvalidArgument,
                  "--image needs an NCHW input with batch 1 and 1 or 3 channels; '" + in.name +
                      "' is " + typed_shape(in.dtype, s),
                  "give the tensor as --input " + in.name + "=FILE.npy instead");
  p.channels = dim(1) == 1 ? 1 : 3;
  if (!o.image_size.empty()) {
    auto hw = parse_dims(o.image_size);
    if (!hw || hw->size() != 2 || (*hw)[0] <= 0 || (*hw)[1] <= 0)
      return bad_option("--image-size", o.image_size, "HxW, e.g. 224x224");
    p.height = (*hw)[0];
    p.width = (*hw)[1];
  } else {
    p.height = std::max<int64_t>(dim(2), 0);
    p.width = std::max<int64_t>(dim(3), 0);
  }
  if (!o.mean.empty()) {
    KILN_ASSIGN_OR_RETURN(p.mean, parse_triple("--mean", o.mean));
  }
  if (!o.std.empty()) {
    KILN_ASSIGN_OR_RETURN(p.std, parse_triple("--std", o.std));
  }
  if (!o.scale.empty()) {
    KILN_ASSIGN_OR_RETURN(p.scale, parse_scale(o.scale));
  }
  p.bgr = o.bgr;
  return p;
}

}  // namespace

Result<std::map<std::string, LoadedInput>> gather_inputs(const Engine& engine,
                                                         const InputOptions& o) {
  std::map<std::string, LoadedInput> out;
  auto add = [&](const std::string& name, HostTensor t, std::string source) -> Status {
    auto it = out.find(name);
    if (it != out.end())
      return Status(
          ErrorCode::kInvalidArgument,
          "input '" + name + "' is given twice (" + it->second.source + " and " + source + ")",
          "give each input once");
    out[name] = {std::move(t), std::move(source)};
    return Status::ok();
  };
  if (!o.npz.empty()) {
    KILN_ASSIGN_OR_RETURN(std::vector<io::NamedTensor> members, io::read_npz(o.npz));
    for (auto& m : members) {
      if (!find_input(engine, m.name)) {
        std::cerr << "note: ignoring '" << m.name << "' in " << o.npz << ": not an engine input\n";
        continue;
      }
      KILN_RETURN_IF_ERROR(add(m.name, std::move(m.tensor), o.npz));
    }
  }
  for (const auto& spec : o.npy) {
    KILN_ASSIGN_OR_RETURN(auto kv, split_assignment("--input", spec));
    if (!find_input(engine, kv.first)) return unknown_input(engine, "--input", kv.first);
    KILN_ASSIGN_OR_RETURN(HostTensor t, io::read_npy(kv.second));
    KILN_RETURN_IF_ERROR(add(kv.first, std::move(t), kv.second));
  }
  for (const auto& spec : o.images) {
    KILN_ASSIGN_OR_RETURN(auto kv, split_assignment("--image", spec));
    const ir::Value* in = find_input(engine, kv.first);
    if (!in) return unknown_input(engine, "--image", kv.first);
    KILN_ASSIGN_OR_RETURN(io::ImagePreprocess p, image_params(*in, o));
    KILN_ASSIGN_OR_RETURN(HostTensor t, io::load_image(kv.second, p));
    // Preprocessing is done in f32; models with f16 (or integer) image inputs get a cast.
    if (in->dtype != DataType::kF32 && in->dtype != DataType::kUndefined) t = t.cast(in->dtype);
    KILN_RETURN_IF_ERROR(add(kv.first, std::move(t), kv.second));
  }
  std::string missing;
  for (const ir::Value* v : engine.graph().inputs)
    if (!out.count(v->name))
      missing += (missing.empty() ? "" : ", ") + v->name + " " + typed_shape(v->dtype, v->shape);
  if (!missing.empty() && !o.allow_missing)
    return Status(ErrorCode::kMissingInput, "engine inputs not given: " + missing,
                  "give each with --input NAME=FILE.npy, --inputs FILE.npz or --image NAME=IMAGE "
                  "(engine inputs: " +
                      input_list(engine) + ")");
  return out;
}

}  // namespace kiln::cli
