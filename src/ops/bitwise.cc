// Bitwise integer ops (ONNX Operators.md: BitwiseAnd/Or/Xor/Not from opset 18, BitShift from
// opset 11) with numpy multidirectional broadcasting. BitShift is specified for unsigned
// types up to opset 23; signed types follow the later BitShift-28 rules (arithmetic right
// shift; shifts < 0 or >= the bit width give the sign fill: -1 for a right shift of a
// negative value, else 0), which also keep every shift amount free of C++ undefined behaviour.
#include "ops/elementwise.h"

namespace kiln::ops {
namespace {

struct BitAnd {
  template <typename C>
  C operator()(C a, C b) const {
    return static_cast<C>(a & b);
  }
};
struct BitOr {
  template <typename C>
  C operator()(C a, C b) const {
    return static_cast<C>(a | b);
  }
};
struct BitXor {
  template <typename C>
  C operator()(C a, C b) const {
    return static_cast<C>(a ^ b);
  }
};
struct BitNot { template <typename C> C operator()(C a) const { return static_cast<C>(~a); } };

struct BitShift {
  bool left;
  explicit BitShift(const ir::Node& n) : left(n.attr_s("direction", "") == "LEFT") {}
  template <typename C> C operator()(C x, C y) const {
    using U = std::make_unsigned_t<C>;
    constexpr int64_t kBits = 8 * sizeof(C);
    const bool out_of_range = (std::is_signed_v<C> && y < 0) || static_cast<uint64_t>(y) >= kBits;
    if (left) return out_of_range ? C(0) : static_cast<C>(static_cast<U>(static_cast<U>(x) << y));
    if (out_of_range) return (std::is_signed_v<C> && x < 0) ? static_cast<C>(-1) : C(0);
    return static_cast<C>(x >> y);  // arithmetic for signed C (defined since C++20)
  }
};

Status check_bitshift(const ir::Node& n) {
  std::string d = n.attr_s("direction", "");
  if (d == "LEFT" || d == "RIGHT") return Status::ok();
  return Status(ErrorCode::kOnnxBadAttribute,
                "BitShift direction must be \"LEFT\" or \"RIGHT\", got \"" + d + "\"",
                "set the direction attribute", n.loc("attribute 'direction'"));
}

Status infer_binary_int(InferContext& ctx) {
  KILN_RETURN_IF_ERROR(check_input_type(ctx, 0, kTsInt));
  KILN_RETURN_IF_ERROR(check_same_types(ctx, 0, 2));
  return infer_broadcast(ctx);
}

template <typename Op>
Status binary_int_cpu(KernelContext& ctx) {
  const Op op = make_op<Op>(ctx.node());
  return dispatch_types<kTsInt>(ctx.input(0).dtype(), [&](auto t) {
    using T = decltype(t);
    binary_map<T, T, T>(ctx.input(0), ctx.input(1), ctx.output(0), op);
    return Status::ok();
  });
}

// clang-format off
const ElementwiseEntry kEntries[] = {
    {"BitwiseAnd", 18, 2, infer_binary_int, binary_int_cpu<BitAnd>, "a & b on integers"},
    {"BitwiseOr", 18, 2, infer_binary_int, binary_int_cpu<BitOr>, "a | b on integers"},
    {"BitwiseXor", 18, 2, infer_binary_int, binary_int_cpu<BitXor>, "a ^ b on integers"},
    {"BitwiseNot", 18, 1, infer_unary<kTsInt>, unary_cpu<kTsInt, BitNot>, "~a on integers"},
    {"BitShift", 11, 2, infer_binary_int, binary_int_cpu<BitShift>, "x << y or x >> y (direction)",
     check_bitshift, 28},
};
// clang-format on

}  // namespace

KILN_REGISTER_OPS(bitwise) {
  register_elementwise(reg, kEntries);
}

}  // namespace kiln::ops
