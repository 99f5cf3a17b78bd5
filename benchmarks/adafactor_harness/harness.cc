// The fused Adafactor kernel's forward (gopt_adafactor, factored tensors only) timed without the
// MXNet runtime: several versions of factored.cc, each compiled in a namespace of its own by
// build.sh (VARIANT_* below), called round-robin on the same arrays, so that this machine's
// swings in bandwidth and CPU fall on all of them alike.
//
//   harness SHAPES_FILE [ROUNDS]    (SHAPES_FILE: one shape a line, e.g. "512 512 3 3")
//
// Prints per version the median, 10th percentile and minimum of ROUNDS calls and the bytes
// bench._adafactor_bytes counts per second at the median; and a memcpy bandwidth (2 threads,
// plain stores, so it moves 3 bytes per 2 it counts) before and after, for orientation only.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common.h"

using gluon_opt::Attrs;
using gluon_opt::MXReturnValue;
using gluon_opt::MXTensor;
using gluon_opt::OpResource;

#define DECL(NS)                                                                               \
  namespace NS {                                                                               \
  MXReturnValue adafactor_forward(const Attrs&, std::vector<MXTensor>*, std::vector<MXTensor>*, \
                                  const OpResource&);                                          \
  }
VARIANT_DECLS

typedef MXReturnValue (*Forward)(const Attrs&, std::vector<MXTensor>*, std::vector<MXTensor>*,
                                 const OpResource&);
static const Forward kVariants[] = {VARIANT_PTRS};
static const char* const kNames[] = {VARIANT_NAMES};

namespace {

using Shape = std::vector<int64_t>;

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

float* uniform(int64_t n, float lo, float hi, std::mt19937* rng) {
  float* p = static_cast<float*>(aligned_alloc(64, (n * 4 + 63) / 64 * 64 + 64));
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < n; ++i) p[i] = d(*rng);
  return p;
}

MXTensor tensor(float* data, const Shape& shape) {
  return MXTensor(data, shape, mxnet::ext::kFloat32, 0, mxnet::ext::MXContext::CPU(0),
                  mxnet::ext::kDefaultStorage);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double memcpy_bandwidth(int64_t bytes) {
  std::vector<char> a(bytes, 1), b(bytes, 2);
  std::vector<double> ts;
  const int64_t chunk = 1 << 20;
  for (int r = 0; r < 15; ++r) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(gluon_opt::max_threads())
    for (int64_t c = 0; c < bytes / chunk; ++c)
      std::memcpy(b.data() + c * chunk, a.data() + c * chunk, chunk);
    ts.push_back(seconds_since(t0));
  }
  std::sort(ts.begin(), ts.end());
  return 2.0 * bytes / ts[ts.size() / 2] / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SHAPES_FILE [ROUNDS]\n", argv[0]);
    return 2;
  }
  FILE* f = std::fopen(argv[1], "r");
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  std::vector<Shape> shapes;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    Shape s;
    char* p = line;
    char* end;
    for (long v = std::strtol(p, &end, 10); end != p; v = std::strtol(p, &end, 10)) {
      s.push_back(v);
      p = end;
    }
    if (s.size() >= 2) shapes.push_back(s);
  }
  std::fclose(f);
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 30;

  std::mt19937 rng(0);
  std::vector<MXTensor> in, out;
  std::string sc;
  double bytes = 0;  // as bench._adafactor_bytes
  int64_t total = 0;
  for (const Shape& s : shapes) {
    const Shape row(s.begin(), s.end() - 1);
    Shape col(s.begin(), s.end() - 2);
    col.push_back(s.back());
    const int64_t n = numel(s), states = numel(row) + numel(col);
    float* w = uniform(n, -0.1f, 0.1f, &rng);
    in.push_back(tensor(w, s));
    in.push_back(tensor(uniform(n, -1, 1, &rng), s));
    in.push_back(tensor(uniform(numel(row), 0.1f, 1, &rng), row));
    in.push_back(tensor(uniform(numel(col), 0.1f, 1, &rng), col));
    out.push_back(tensor(w, s));
    sc += (sc.empty() ? "" : ",") + std::string("0.01,0.9,0.0,1.0");  // alpha, b2t, wd, decay
    bytes += 4.0 * (3 * n + 2 * states) + 8.0 * n;
    total += n;
  }
  const Attrs attrs = {{"n", std::to_string(shapes.size())}, {"ns", "2"}, {"mp", "0"},
                       {"rescale", "1.0"}, {"clip", "-1"}, {"sc", sc}, {"epsilon1", "1e-30"},
                       {"epsilon2", "1e-3"}, {"clip_threshold", "1.0"}, {"momentum", "0"},
                       {"beta1", "0"}, {"scale_parameter", "1"}};
  const OpResource res(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                       nullptr);
  const double bw_before = memcpy_bandwidth(256 << 20);
  const int nv = sizeof(kVariants) / sizeof(kVariants[0]);
  for (int r = 0; r < 3; ++r)
    for (int v = 0; v < nv; ++v) kVariants[v](attrs, &in, &out, res);
  std::vector<std::vector<double>> times(nv);
  for (int r = 0; r < rounds; ++r) {
    for (int v = 0; v < nv; ++v) {
      auto t0 = std::chrono::steady_clock::now();
      kVariants[v](attrs, &in, &out, res);
      times[v].push_back(seconds_since(t0));
    }
  }
  const double bw_after = memcpy_bandwidth(256 << 20);
  std::printf("%zu tensors, %ld elements; memcpy %.1f / %.1f GB/s (before / after)\n",
              shapes.size(), static_cast<long>(total), bw_before, bw_after);
  for (int v = 0; v < nv; ++v) {
    std::vector<double>& t = times[v];
    std::sort(t.begin(), t.end());
    const double median = t[t.size() / 2];
    std::printf("  %-8s median %.3f ms  q10 %.3f  min %.3f  %.1f GB/s\n", kNames[v],
                median * 1e3, t[t.size() / 10] * 1e3, t[0] * 1e3, bytes / median / 1e9);
  }
  return 0;
}
