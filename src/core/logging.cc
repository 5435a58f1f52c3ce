#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "kiln/kiln.h"

namespace kiln {

void Logger::log(LogLevel level, const std::string& message) {
  if (!enabled(level)) return;
  static auto sink = [] {
    auto l = spdlog::stderr_color_mt("kiln");
    l->set_pattern("[kiln] %^%l%$: %v");
    l->set_level(spdlog::level::trace);
    return l;
  }();
  static const spdlog::level::level_enum map[] = {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                                                  spdlog::level::warn, spdlog::level::err, spdlog::level::off};
  sink->log(map[static_cast<int>(level)], message);
}

const char* backend_name(Backend b) { return b == Backend::kCuda ? "cuda" : "cpu"; }
const char* precision_name(Precision p) {
  return p == Precision::kFp16 ? "fp16" : p == Precision::kBf16 ? "bf16" : "fp32";
}
const char* version() { return KILN_VERSION; }

}  // namespace kiln
