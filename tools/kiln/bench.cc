// Timing statistics and the multi-stream driver of `kiln bench` (see bench.h).
#include "bench.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <thread>

#include "cli.h"

namespace kiln::cli::bench {

void Samples::append(const Samples& o) {
  auto add = [](std::vector<double>& a, const std::vector<double>& b) {
    a.insert(a.end(), b.begin(), b.end());
  };
  add(gpu_compute, o.gpu_compute);
  add(latency, o.latency);
  add(enqueue, o.enqueue);
  add(h2d, o.h2d);
  add(d2h, o.d2h);
}

Stats summarize(std::vector<double> ms) {
  Stats s;
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  auto rank = [&](double p) {
    const size_t k = static_cast<size_t>(std::ceil(p / 100.0 * double(n)));
    return ms[std::min(n, std::max<size_t>(k, 1)) - 1];
  };
  s.count = n;
  s.min = ms.front();
  s.max = ms.back();
  double sum = 0;
  for (double v : ms) sum += v;
  s.mean = sum / double(n);
  s.median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  s.p90 = rank(90);
  s.p95 = rank(95);
  s.p99 = rank(99);
  return s;
}

Result<RunResult> run_streams(std::vector<std::unique_ptr<StreamRunner>>& runners,
                              const RunConfig& cfg) {
  using Clock = std::chrono::steady_clock;
  const size_t n = runners.size();
  // All streams start the measured phase together: no stream measures while another is
  // still warming up.
  std::barrier start(static_cast<std::ptrdiff_t>(n));
  std::atomic<bool> stop{false};
  std::vector<Status> errors(n);
  std::vector<Samples> samples(n);
  // The measured window: from the first stream's start to the last stream's last result.
  std::vector<Clock::time_point> begin(n), end(n);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      StreamRunner& r = *runners[i];
      Status st = r.start_thread();
      // Steps until `done` (checked after each step) or an error anywhere, then drains.
      auto loop = [&](bool record, auto done) {
        while (st.is_ok() && !stop.load()) {
          st = r.step(record, samples[i]);
          if (done()) break;
        }
        if (st.is_ok()) st = r.drain(samples[i]);
        if (!st.is_ok()) stop = true;
      };
      auto t = Clock::now();
      loop(false, [&] { return ms_since(t) >= cfg.warmup_ms; });
      start.arrive_and_wait();
      t = begin[i] = Clock::now();
      int64_t count = 0;
      if (cfg.iterations > 0)
        loop(true, [&] { return ++count >= cfg.iterations; });
      else
        loop(true, [&] { return ms_since(t) >= cfg.duration_s * 1000.0; });
      end[i] = Clock::now();
      errors[i] = st;
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < n; ++i)
    if (!errors[i].is_ok()) return errors[i].with_context("stream " + std::to_string(i));
  RunResult res;
  if (n == 0) return res;
  for (const Samples& s : samples) res.samples.append(s);
  res.inferences = static_cast<int64_t>(res.samples.latency.size());
  res.wall_s = std::chrono::duration<double>(*std::max_element(end.begin(), end.end()) -
                                             *std::min_element(begin.begin(), begin.end()))
                   .count();
  return res;
}

}  // namespace kiln::cli::bench
