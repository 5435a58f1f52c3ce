// Public CUDA memory helpers (kiln.h): CudaBuffer, cuda_copy_async, ...
#include <cuda_runtime.h>

#include "cuda/cuda_check.h"
#include "cuda/handles.h"
#include "kiln/kiln.h"

namespace kiln {

CudaBuffer::CudaBuffer(CudaBuffer&& o) noexcept : data_(o.data_), size_(o.size_), kind_(o.kind_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

CudaBuffer& CudaBuffer::operator=(CudaBuffer&& o) noexcept {
  if (this != &o) {
    this->~CudaBuffer();
    data_ = o.data_;
    size_ = o.size_;
    kind_ = o.kind_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

CudaBuffer::~CudaBuffer() {
  if (!data_) return;
  if (kind_ == Kind::kDevice) cudaFree(data_);
  else cudaFreeHost(data_);
  data_ = nullptr;
}

Result<CudaBuffer> CudaBuffer::allocate(Kind kind, size_t bytes) {
  if (cuda::device_count() == 0)
    return Status(ErrorCode::kNoGpu, "no CUDA GPU is visible to this process", "check nvidia-smi and CUDA_VISIBLE_DEVICES");
  CudaBuffer b;
  b.kind_ = kind;
  b.size_ = bytes;
  const size_t n = bytes ? bytes : 1;
  if (kind == Kind::kDevice) KILN_CUDA_CHECK(cudaMalloc(&b.data_, n));
  else KILN_CUDA_CHECK(cudaMallocHost(&b.data_, n));
  return b;
}

Status cuda_copy_async(void* dst, const void* src, size_t bytes, void* stream) {
  if (bytes) KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, static_cast<cudaStream_t>(stream)));
  return Status::ok();
}

Status cuda_stream_synchronize(void* stream) {
  KILN_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  return Status::ok();
}

int cuda_device_count() { return cuda::device_count(); }

}  // namespace kiln
