// Status and Result<T>: how every kiln API reports failure. No exceptions cross the public
// API; nothing aborts on user input.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace kiln {

/// Error codes, catalogued in include/kiln/error_codes.def and docs/errors.md.
enum class ErrorCode : int {
  kOk = 0,
#define KILN_ERROR(name, number, title, text) k##name = number,
#include "kiln/error_codes.def"
#undef KILN_ERROR
};

/// Catalogue entry of an error code: "KLN-E1004", title and explanation.
struct ErrorInfo {
  ErrorCode code;
  const char* id_title;   ///< title line
  const char* text;       ///< what it means, what to do
};
/// Returns the catalogue entry for `code`, or nullptr for an unknown code.
const ErrorInfo* error_info(ErrorCode code);
/// Formats a code as "KLN-E1004".
std::string error_id(ErrorCode code);
/// Parses "KLN-E1004" (or "1004"); returns nullopt when not a catalogued code.
std::optional<ErrorCode> parse_error_id(const std::string& id);

/// True for errors that mean "valid input that kiln does not implement" (an operator,
/// op version, IR version, data type or attribute value), as opposed to malformed input
/// or a failure: `kiln` exits with its "unsupported" code, conformance counts them apart.
bool is_unsupported_feature(ErrorCode code);

/// Where an error happened in the model (any field may be empty / 0).
struct ErrorLocation {
  std::string node;     ///< node name
  std::string op;       ///< op type, e.g. "Conv"
  int opset = 0;        ///< opset of the node's domain
  std::string detail;   ///< input / attribute the problem is about, e.g. "attribute 'mode'"
};

/// Result of an operation: ok, or an error code with a message, a location and a hint.
/// Formats as: error[KLN-E1004]: <message> at node 'n' (Op, opset 13): <detail>. hint: <hint>
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message, std::string hint = {}, ErrorLocation loc = {})
      : state_(std::make_shared<State>(State{code, std::move(message), std::move(hint),
                                             std::move(loc)})) {}
  static Status ok() { return {}; }

  bool is_ok() const { return state_ == nullptr; }
  explicit operator bool() const { return is_ok(); }
  ErrorCode code() const { return state_ ? state_->code : ErrorCode::kOk; }
  const std::string& message() const { return state_ ? state_->message : empty(); }
  const std::string& hint() const { return state_ ? state_->hint : empty(); }
  const ErrorLocation& location() const;

  /// Returns a copy whose location is filled in where still empty.
  Status at(const ErrorLocation& loc) const;
  /// Returns a copy with `prefix: ` prepended to the message.
  Status with_context(const std::string& prefix) const;
  /// One-line rendering in the documented shape (see class comment).
  std::string to_string() const;

 private:
  struct State {
    ErrorCode code;
    std::string message;
    std::string hint;
    ErrorLocation loc;
  };
  static const std::string& empty();
  std::shared_ptr<const State> state_;
};

/// A value or an error Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kiln

/// Propagates a non-ok Status from an expression.
#define KILN_RETURN_IF_ERROR(expr)            \
  do {                                        \
    ::kiln::Status _kiln_st = (expr);         \
    if (!_kiln_st.is_ok()) return _kiln_st;   \
  } while (0)

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)
/// `KILN_ASSIGN_OR_RETURN(auto x, f());` assigns the value of a Result or returns its error.
#define KILN_ASSIGN_OR_RETURN(decl, expr)                                      \
  auto KILN_CONCAT(_kiln_r_, __LINE__) = (expr);                               \
  if (!KILN_CONCAT(_kiln_r_, __LINE__).is_ok())                                \
    return KILN_CONCAT(_kiln_r_, __LINE__).status();                           \
  decl = std::move(KILN_CONCAT(_kiln_r_, __LINE__)).value()
