// The public CUDA helpers in a kiln built without the CUDA backend: every call reports
// that clearly instead of failing to link.
#ifndef KILN_WITH_CUDA
#include "kiln/kiln.h"

namespace kiln {
namespace {
Status no_cuda() {
  return Status(ErrorCode::kNoGpu, "this kiln was built without the CUDA backend",
                "rebuild on a machine with the CUDA toolkit (nvcc), or use --backend cpu");
}
}  // namespace

CudaBuffer::CudaBuffer(CudaBuffer&& o) noexcept : data_(o.data_), size_(o.size_), kind_(o.kind_) { o.data_ = nullptr; }
CudaBuffer& CudaBuffer::operator=(CudaBuffer&& o) noexcept {
  std::swap(data_, o.data_);
  std::swap(size_, o.size_);
  std::swap(kind_, o.kind_);
  return *this;
}
CudaBuffer::~CudaBuffer() = default;
Result<CudaBuffer> CudaBuffer::allocate(Kind, size_t) { return no_cuda(); }
Status cuda_copy_async(void*, const void*, size_t, void*) { return no_cuda(); }
Status cuda_stream_synchronize(void*) { return no_cuda(); }
int cuda_device_count() { return 0; }

}  // namespace kiln
#endif
