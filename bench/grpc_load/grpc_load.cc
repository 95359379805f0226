// A closed-loop gRPC load generator in C++: the client side of `bench/bench_serving.py`'s gRPC rounds.
//
// A Python client spends about 400 us of CPU per request, as much as the server it measures, on a 2-core
// machine that both share. This one sends pre-serialized requests through grpc++'s generic stub (no
// protobuf classes: the bench writes the requests, and parses a sample of the answers it gets back).
//
//   grpc_load --target 127.0.0.1:8500 --requests requests.bin --concurrency 64 --seconds 5
//       [--method /tensorflow.serving.PredictionService/Predict] [--channels 4] [--samples answers.bin]
//
// requests.bin: records of [uint32 little-endian length][bytes], cycled through. Each of `concurrency`
// callers has one request in flight at a time; callers are spread over `channels` connections (a server
// with several processes on one SO_REUSEPORT port gets one connection per channel). Prints one JSON line:
// answered, failed, seconds, qps, latency percentiles (ms), the client's CPU seconds, the first errors.
// --samples writes the first answers in the same record format, for the caller to parse and check.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target;
  std::string method = "/tensorflow.serving.PredictionService/Predict";
  std::string requests;
  std::string samples;
  int concurrency = 64;
  int channels = 1;
  int max_samples = 256;
  double seconds = 5.0;
  double deadline_s = 10.0;
};

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "grpc_load: %s\n", message.c_str());
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Fail("flag " + flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--target") options.target = value;
    else if (flag == "--method") options.method = value;
    else if (flag == "--requests") options.requests = value;
    else if (flag == "--samples") options.samples = value;
    else if (flag == "--concurrency") options.concurrency = std::atoi(value.c_str());
    else if (flag == "--channels") options.channels = std::atoi(value.c_str());
    else if (flag == "--max-samples") options.max_samples = std::atoi(value.c_str());
    else if (flag == "--seconds") options.seconds = std::atof(value.c_str());
    else if (flag == "--deadline-s") options.deadline_s = std::atof(value.c_str());
    else Fail("unknown flag " + flag);
  }
  if (options.target.empty() || options.requests.empty()) Fail("--target and --requests are required");
  if (options.concurrency < 1 || options.channels < 1 || options.seconds <= 0)
    Fail("--concurrency and --channels must be >= 1 and --seconds > 0");
  return options;
}

std::vector<std::string> ReadRecords(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot open " + path);
  std::vector<std::string> records;
  uint32_t size = 0;
  while (in.read(reinterpret_cast<char*>(&size), sizeof(size))) {
    std::string record(size, '\0');
    if (!in.read(record.data(), size)) Fail(path + ": record " + std::to_string(records.size()) + " is cut short");
    records.push_back(std::move(record));
  }
  if (records.empty()) Fail(path + ": no requests");
  return records;
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    out += c;
  }
  return out + "\"";
}

struct Call {
  int caller = 0;
  Clock::time_point started;
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = Parse(argc, argv);
  const std::vector<std::string> requests = ReadRecords(options.requests);
  std::vector<grpc::Slice> slices;
  for (const auto& r : requests) slices.emplace_back(r);

  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int i = 0; i < options.channels; ++i) {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    arguments.SetInt("pin2vec.grpc_load.channel", i);
    arguments.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    auto channel = grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), arguments);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)))
      Fail("cannot connect to " + options.target);
    stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
  }

  grpc::CompletionQueue queue;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(1 << 20);
  std::vector<std::string> errors;
  std::vector<std::string> samples;
  long answered = 0, failed = 0, next_request = 0;

  auto start_call = [&](int caller) {
    auto* call = new Call();
    call->caller = caller;
    call->started = Clock::now();
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::microseconds(static_cast<long>(options.deadline_s * 1e6)));
    grpc::ByteBuffer request(&slices[next_request++ % slices.size()], 1);
    call->reader = stubs[caller % stubs.size()]->PrepareUnaryCall(&call->context, options.method, request, &queue);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  };

  const double cpu_before = CpuSeconds();
  const auto started = Clock::now();
  const auto stop_at = started + std::chrono::microseconds(static_cast<long>(options.seconds * 1e6));
  for (int caller = 0; caller < options.concurrency; ++caller) start_call(caller);
  int in_flight = options.concurrency;
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && queue.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    const auto now = Clock::now();
    if (ok && call->status.ok()) {
      ++answered;
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - call->started).count());
      if (!options.samples.empty() && static_cast<int>(samples.size()) < options.max_samples) {
        std::vector<grpc::Slice> parts;
        std::string bytes;
        if (call->response.Dump(&parts).ok())
          for (const auto& part : parts) bytes.append(reinterpret_cast<const char*>(part.begin()), part.size());
        samples.push_back(std::move(bytes));
      }
    } else {
      ++failed;
      if (errors.size() < 5)
        errors.push_back(std::to_string(call->status.error_code()) + ": " + call->status.error_message());
    }
    if (now < stop_at) start_call(call->caller);
    else --in_flight;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  const double cpu = CpuSeconds() - cpu_before;

  if (!options.samples.empty()) {
    std::ofstream out(options.samples, std::ios::binary);
    for (const auto& s : samples) {
      const uint32_t size = s.size();
      out.write(reinterpret_cast<const char*>(&size), sizeof(size));
      out.write(s.data(), size);
    }
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto percentile = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    return latencies_ms[std::min(latencies_ms.size() - 1, static_cast<size_t>(p * latencies_ms.size()))];
  };
  std::printf(
      "{\"answered\": %ld, \"failed\": %ld, \"seconds\": %.3f, \"qps\": %.1f, \"p50_ms\": %.3f, "
      "\"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"cpu_s\": %.3f, \"concurrency\": %d, "
      "\"channels\": %d, \"errors\": [",
      answered, failed, elapsed, answered / elapsed, percentile(0.5), percentile(0.9), percentile(0.99),
      latencies_ms.empty() ? 0.0 : latencies_ms.back(), cpu, options.concurrency, options.channels);
  for (size_t i = 0; i < errors.size(); ++i) std::printf("%s%s", i ? ", " : "", JsonString(errors[i]).c_str());
  std::printf("]}\n");
  return 0;
}
