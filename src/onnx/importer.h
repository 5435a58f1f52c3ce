// ONNX → IR. Reads ModelProto (IR versions 3–14, any default-domain opset; each node
// runs the op version in effect at the model's opset, if kiln implements it), initializers
// (typed fields, raw_data, external data files), Constant nodes (become constant values),
// and If/Loop/Scan subgraphs with their outer-scope captures.
//
// Diagnostics: every problem of the model is collected in one pass (dangling inputs,
// duplicate names, bad tensors, unsupported ops/opsets checked against the op table) and
// returned in `diags`; the function fails with the first of them. Never throws.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace onnx {
class TensorProto;
}

namespace kiln::onnx_import {

/// Model-level default-domain opsets accepted; the newest one is the installed onnx
/// package's (ops_since_version dispatch decides per node what actually runs).
constexpr int kMinOpset = 1;
constexpr int kMinIrVersion = 3;
constexpr int kMaxIrVersion = 14;

struct ImportOptions {
  /// Check every node against the op table (unsupported ops / opsets) while importing.
  bool check_ops = true;
};

/// Imports a model file. External data is resolved relative to the file's directory.
/// Errors: IoError, OnnxMalformed, OnnxIrVersion, OnnxOpsetUnsupported, OnnxUnsupportedOp,
/// OnnxUndefinedInput, OnnxDuplicateName, OnnxGraphCycle, OnnxBadTensor, OnnxExternalData.
Result<std::unique_ptr<ir::Graph>> import_file(const std::string& path, std::vector<Status>* diags = nullptr,
                                               const ImportOptions& opts = {});
/// Imports from memory; `base_dir` locates external data files ("" = none allowed).
Result<std::unique_ptr<ir::Graph>> import_bytes(const void* data, size_t size, const std::string& base_dir,
                                                std::vector<Status>* diags = nullptr,
                                                const ImportOptions& opts = {});

/// Converts a TensorProto (e.g. a test's input_0.pb) to a HostTensor.
Result<HostTensor> tensor_from_proto(const onnx::TensorProto& t, const std::string& base_dir = "");
/// Reads a serialized TensorProto file (the ONNX backend tests' .pb files); `name` gets the
/// tensor's name.
Result<HostTensor> read_tensor_pb(const std::string& path, std::string* name = nullptr);

/// ONNX TensorProto.DataType code → kiln DataType (kUndefined when unsupported).
DataType from_onnx_dtype(int code);
int to_onnx_dtype(DataType t);
/// ONNX type name for messages ("STRING", "COMPLEX64", ...).
std::string onnx_dtype_name(int code);

}  // namespace kiln::onnx_import
