#include "digits_service.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "echo_model.h"
#include "oip_tensors.h"

namespace digits {
namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t NanosSince(Clock::time_point started) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count());
}

std::uint64_t WallMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// The sleep_ms test hook, cut short when the caller cancels or its deadline passes.
bool SleepUnlessCancelled(grpc::ServerContext* context, std::int64_t ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < until) {
    if (context->IsCancelled()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(5),
                                                          until - Clock::now()));
  }
  return !context->IsCancelled();
}

}  // namespace

Statistics::Statistics() {
  stats_.set_name(kModel);
  stats_.set_version(kVersion);
}

void Statistics::Success(std::uint64_t batch, std::uint64_t total_ns, std::uint64_t compute_ns) {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.set_last_inference(WallMs());
  stats_.set_inference_count(stats_.inference_count() + batch);
  stats_.set_execution_count(stats_.execution_count() + 1);
  auto* success = stats_.mutable_inference_stats()->mutable_success();
  success->set_count(success->count() + 1);
  success->set_ns(success->ns() + total_ns);
  auto* compute = stats_.mutable_inference_stats()->mutable_compute_infer();
  compute->set_count(compute->count() + 1);
  compute->set_ns(compute->ns() + compute_ns);
}

void Statistics::Failure(std::uint64_t total_ns) {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.set_last_inference(WallMs());
  auto* fail = stats_.mutable_inference_stats()->mutable_fail();
  fail->set_count(fail->count() + 1);
  fail->set_ns(fail->ns() + total_ns);
}

inference::ModelStatistics Statistics::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

DigitsService::DigitsService(const Model& model, ServerIdentity identity)
    : model_(model), identity_(std::move(identity)) {}

grpc::Status DigitsService::ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) {
  response->set_live(true);
  return grpc::Status::OK;
}

grpc::Status DigitsService::ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) {
  response->set_ready(!draining_);
  return grpc::Status::OK;
}

grpc::Status DigitsService::ModelReady(grpc::ServerContext*,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) {
  grpc::Status status = request->name() == kEchoModel ? CheckEchoVersion(request->version())
                                                      : CheckModel(request->name(), request->version());
  if (status.ok()) response->set_ready(!draining_);
  return status;
}

grpc::Status DigitsService::ServerMetadata(grpc::ServerContext*,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) {
  response->set_name(identity_.name);
  response->set_version(identity_.version);
  return grpc::Status::OK;
}

grpc::Status DigitsService::ModelMetadata(grpc::ServerContext*,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) {
  if (request->name() == kEchoModel) {
    grpc::Status status = CheckEchoVersion(request->version());
    if (status.ok()) DescribeEcho(identity_.platform, response);
    return status;
  }
  grpc::Status status = CheckModel(request->name(), request->version());
  if (status.ok()) DescribeModel(identity_.platform, response);
  return status;
}

grpc::Status DigitsService::ModelInfer(grpc::ServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) {
  if (request->model_name() == kEchoModel) return Echo(*request, response);
  grpc::Status status = CheckModel(request->model_name(), request->model_version());
  if (!status.ok()) return status;
  return Infer(context, *request, response);
}

grpc::Status DigitsService::ModelStreamInfer(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>*
        stream) {
  // One answer per request, in order; a bad request is answered in band and the stream goes on.
  inference::ModelInferRequest request;
  while (stream->Read(&request)) {
    inference::ModelStreamInferResponse answer;
    grpc::Status status;
    if (request.model_name() == kEchoModel) {
      status = Echo(request, answer.mutable_infer_response());
    } else {
      status = CheckModel(request.model_name(), request.model_version());
      if (status.ok()) status = Infer(context, request, answer.mutable_infer_response());
    }
    if (!status.ok()) {
      answer.Clear();
      answer.set_error_message(status.error_message());
    }
    if (!stream->Write(answer)) break;
  }
  return grpc::Status::OK;
}

grpc::Status DigitsService::ModelStatistics(grpc::ServerContext*,
                                            const inference::ModelStatisticsRequest* request,
                                            inference::ModelStatisticsResponse* response) {
  // An empty name asks for every model: here, the one.
  if (!request->name().empty() || !request->version().empty()) {
    grpc::Status status =
        CheckModel(request->name().empty() ? kModel : request->name(), request->version());
    if (!status.ok()) return status;
  }
  *response->add_model_stats() = statistics_.Snapshot();
  return grpc::Status::OK;
}

grpc::Status DigitsService::Infer(grpc::ServerContext* context,
                                  const inference::ModelInferRequest& request,
                                  inference::ModelInferResponse* response) {
  const auto started = Clock::now();
  std::int64_t sleep_ms = 0;
  Pixels pixels;
  std::vector<std::string> names;
  grpc::Status status = SleepMs(request, &sleep_ms);
  if (status.ok() && sleep_ms > 0 && !SleepUnlessCancelled(context, sleep_ms)) {
    status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled while sleeping (sleep_ms)");
  }
  if (status.ok()) status = DecodeInput(request, &pixels);
  if (status.ok()) status = RequestedOutputs(request, &names);
  if (!status.ok()) {
    statistics_.Failure(NanosSince(started));
    return status;
  }
  const auto compute_started = Clock::now();
  const Prediction prediction = model_.Predict(pixels.values.data(), pixels.rows);
  const std::uint64_t compute_ns = NanosSince(compute_started);
  EncodeResponse(request, names, prediction, pixels.raw, response);
  statistics_.Success(pixels.rows, NanosSince(started), compute_ns);
  return grpc::Status::OK;
}

}  // namespace digits
