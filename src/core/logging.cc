#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>

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

namespace {
constexpr TacticSource kTacticSources[] = {TacticSource::kKiln, TacticSource::kCudnn,
                                           TacticSource::kCublasLt};
}  // namespace

const char* tactic_source_name(TacticSource s) {
  switch (s) {
    case TacticSource::kKiln: return "kiln";
    case TacticSource::kCudnn: return "cudnn";
    case TacticSource::kCublasLt: return "cublaslt";
  }
  return "?";
}

std::string tactic_sources_to_string(uint32_t mask) {
  std::string out;
  for (TacticSource s : kTacticSources)
    if (mask & tactic_source_bit(s)) out += (out.empty() ? "" : ",") + std::string(tactic_source_name(s));
  return out;
}

Result<uint32_t> parse_tactic_sources(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status(ErrorCode::kInvalidArgument, "--tactic-sources '" + text + "': " + why,
                  "name sources (kiln,cudnn,cublaslt) or edit the default set with signs "
                  "(-cublaslt, +kiln,-cudnn)");
  };
  uint32_t named = 0, mask = kAllTacticSources;
  int signed_entries = 0, entries = 0;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    std::string e = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (e.empty()) return bad("an empty entry");
    const char sign = e[0] == '+' || e[0] == '-' ? e[0] : 0;
    const std::string name = sign ? e.substr(1) : e;
    uint32_t bit = 0;
    for (TacticSource s : kTacticSources)
      if (name == tactic_source_name(s)) bit = tactic_source_bit(s);
    if (!bit) return bad("unknown source '" + name + "'");
    ++entries;
    if (sign) ++signed_entries;
    if (sign == '-') mask &= ~bit;
    else if (sign == '+') mask |= bit;
    else named |= bit;
  }
  if (signed_entries != 0 && signed_entries != entries)
    return bad("mixes signed (+/-) and plain names");
  const uint32_t out = signed_entries ? mask : named;
  if (!out) return bad("no source left");
  return out;
}

}  // namespace kiln
