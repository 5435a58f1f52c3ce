#include "kiln/status.h"

#include <cstdio>
#include <cstdlib>

namespace kiln {
namespace {
const ErrorInfo kCatalogue[] = {
#define KILN_ERROR(name, number, title, text) {ErrorCode::k##name, title, text},
#include "kiln/error_codes.def"
#undef KILN_ERROR
};
}  // namespace

const ErrorInfo* error_info(ErrorCode code) {
  for (const auto& e : kCatalogue)
    if (e.code == code) return &e;
  return nullptr;
}

std::string error_id(ErrorCode code) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "KLN-E%04d", static_cast<int>(code));
  return buf;
}

std::optional<ErrorCode> parse_error_id(const std::string& id) {
  std::string digits = id;
  for (const char* p : {"KLN-E", "kln-e", "E", "e"})
    if (digits.rfind(p, 0) == 0) { digits = digits.substr(std::char_traits<char>::length(p)); break; }
  if (digits.empty() || digits.size() > 4) return std::nullopt;
  for (char c : digits)
    if (c < '0' || c > '9') return std::nullopt;
  auto code = static_cast<ErrorCode>(std::atoi(digits.c_str()));
  if (!error_info(code)) return std::nullopt;
  return code;
}

bool is_unsupported_feature(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOnnxIrVersion:
    case ErrorCode::kOnnxOpsetUnsupported:
    case ErrorCode::kOnnxUnsupportedOp:
    case ErrorCode::kOnnxUnsupportedAttribute:
    case ErrorCode::kOnnxUnsupportedType:
      return true;
    default:
      return false;
  }
}

const std::string& Status::empty() {
  static const std::string e;
  return e;
}

const ErrorLocation& Status::location() const {
  static const ErrorLocation none;
  return state_ ? state_->loc : none;
}

Status Status::at(const ErrorLocation& loc) const {
  if (is_ok()) return *this;
  ErrorLocation l = state_->loc;
  if (l.node.empty()) l.node = loc.node;
  if (l.op.empty()) l.op = loc.op;
  if (l.opset == 0) l.opset = loc.opset;
  if (l.detail.empty()) l.detail = loc.detail;
  return Status(state_->code, state_->message, state_->hint, l);
}

Status Status::with_context(const std::string& prefix) const {
  if (is_ok()) return *this;
  return Status(state_->code, prefix + ": " + state_->message, state_->hint, state_->loc);
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string s = "error[" + error_id(state_->code) + "]: " + state_->message;
  const auto& l = state_->loc;
  if (!l.node.empty() || !l.op.empty()) {
    s += " at node '" + l.node + "'";
    if (!l.op.empty()) {
      s += " (" + l.op;
      if (l.opset > 0) s += ", opset " + std::to_string(l.opset);
      s += ")";
    }
  }
  if (!l.detail.empty()) s += ": " + l.detail;
  if (!state_->hint.empty()) s += ". hint: " + state_->hint;
  return s;
}

}  // namespace kiln
