// NumPy .npy and .npz tensor files: how `kiln run` reads inputs and writes outputs.
//
// .npy (format spec: numpy.lib.format, versions 1.0, 2.0 and 3.0) is a 6-byte magic
// "\x93NUMPY", a version, a little-endian header length, an ASCII Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } and the raw element data.
// Supported element types: f32 f16 f64 i8 u8 i16 u16 i32 u32 i64 u64 bool, either byte
// order (big-endian data is swapped on read), C order only. bf16 and f8e4m3 have no NumPy
// dtype: encode_npy rejects them (cast to f32 first).
//
// .npz is a zip archive of .npy members named "<key>.npy" (numpy.savez / savez_compressed),
// read and written with libzip.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kiln/status.h"

namespace kiln::io {

/// Decodes .npy bytes into a tensor (copied). `what` names the source in messages
/// (a path, "npz member 'x'"). Errors: InvalidArgument for malformed headers, truncated
/// or oversized data, Fortran order, and unsupported dtypes (the message gives the descr).
Result<HostTensor> decode_npy(const void* data, size_t size, const std::string& what = "npy data");

/// Encodes a tensor as .npy (format 1.0; 2.0 when the header exceeds 65535 bytes), native
/// little-endian descr, C order. Errors: InvalidArgument for bf16 / f8e4m3 / undefined.
Result<std::vector<uint8_t>> encode_npy(const HostTensor& t);

/// Reads an .npy file. Errors: IoError, and those of decode_npy.
Result<HostTensor> read_npy(const std::string& path);

/// Writes an .npy file (replacing it). Errors: IoError, and those of encode_npy.
Status write_npy(const std::string& path, const HostTensor& t);

/// One member of an .npz archive: key (member name without ".npy") and tensor.
struct NamedTensor {
  std::string name;
  HostTensor tensor;
};

/// Reads every member of an .npz archive, in archive order. Members not ending in ".npy"
/// are an error (numpy.savez never writes them). Errors: IoError (missing file, not a zip
/// archive, unreadable member), and those of decode_npy naming the member.
Result<std::vector<NamedTensor>> read_npz(const std::string& path);

/// Writes an .npz archive (replacing it); members are stored (numpy.savez) or deflated
/// (numpy.savez_compressed) per `compress`. Errors: InvalidArgument for duplicate or empty
/// names, IoError, and those of encode_npy.
Status write_npz(const std::string& path, const std::vector<NamedTensor>& tensors,
                 bool compress = false);

}  // namespace kiln::io
