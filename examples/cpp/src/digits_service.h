// OIP v2 GRPCInferenceService for model "digits" version "1" (and "echo", echo_model.h), on
// gRPC's synchronous API.
// Knows the model and the OIP messages; not how the server is built, started or stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "digits_model.h"
#include "inference/grpc_service.grpc.pb.h"

namespace digits {

// Triton-style cumulative counters for the one model; durations in nanoseconds. Thread-safe.
class Statistics {
 public:
  Statistics();
  void Success(std::uint64_t batch, std::uint64_t total_ns, std::uint64_t compute_ns);
  void Failure(std::uint64_t total_ns);
  inference::ModelStatistics Snapshot() const;

 private:
  mutable std::mutex mutex_;
  inference::ModelStatistics stats_;
};

struct ServerIdentity {
  std::string name;      // ServerMetadata.name, e.g. "digits-cpp"
  std::string version;   // ServerMetadata.version
  std::string platform;  // ModelMetadata.platform
};

// RepositoryIndex is left UNIMPLEMENTED on purpose, as in the Python reference.
class DigitsService final : public inference::GRPCInferenceService::Service {
 public:
  DigitsService(const Model& model, ServerIdentity identity);

  // Once set, ServerReady and ModelReady answer false; the server keeps answering calls.
  void StartDraining() { draining_ = true; }

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse*) override;
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse*) override;
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest*,
                          inference::ModelReadyResponse*) override;
  grpc::Status ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse*) override;
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest*,
                             inference::ModelMetadataResponse*) override;
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest*,
                          inference::ModelInferResponse*) override;
  grpc::Status ModelStreamInfer(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>*)
      override;
  grpc::Status ModelStatistics(grpc::ServerContext*, const inference::ModelStatisticsRequest*,
                               inference::ModelStatisticsResponse*) override;

 private:
  // Validate, run the model, encode; counts the outcome. The model check is the caller's.
  grpc::Status Infer(grpc::ServerContext* context, const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response);

  const Model& model_;
  const ServerIdentity identity_;
  std::atomic<bool> draining_{false};
  Statistics statistics_;
};

}  // namespace digits
