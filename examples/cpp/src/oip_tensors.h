// The digits model's side of the OIP v2 messages: which model a request addresses, the input
// tensor it carries, the outputs it asks for, and the response in the request's own form.
// Knows the generated protobuf messages and grpc::Status, not the server, threads or sockets.
// Every refusal names the tensor and what is wrong, in examples/python/digits_server.py's words.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "digits_model.h"
#include "inference/grpc_service.pb.h"

namespace digits {

inline constexpr const char* kModel = "digits";
inline constexpr const char* kVersion = "1";
inline constexpr const char* kInput = "INPUT0";
inline constexpr const char* kLabel = "LABEL";
inline constexpr const char* kProbabilities = "PROBABILITIES";

// NOT_FOUND unless name/version address this model; an empty version means the latest.
grpc::Status CheckModel(const std::string& name, const std::string& version);

struct Pixels {
  std::vector<float> values;  // [rows, kFeatures], row-major
  std::size_t rows = 0;
  bool raw = false;  // came as raw_input_contents, so the answer goes as raw_output_contents
};

// The pixels of INPUT0, or INVALID_ARGUMENT naming what is wrong with the request's inputs.
grpc::Status DecodeInput(const inference::ModelInferRequest& request, Pixels* out);

// Output names in the order asked for; none asked for means every output.
grpc::Status RequestedOutputs(const inference::ModelInferRequest& request,
                              std::vector<std::string>* names);

// The "sleep_ms" test-hook parameter (0 when absent), or INVALID_ARGUMENT.
grpc::Status SleepMs(const inference::ModelInferRequest& request, std::int64_t* ms);

// The response in the request's form: raw in, raw out; contents in, contents out; id echoed.
void EncodeResponse(const inference::ModelInferRequest& request,
                    const std::vector<std::string>& names, const Prediction& prediction, bool raw,
                    inference::ModelInferResponse* response);

// Name, versions and tensor metadata of the model; platform names the implementation.
void DescribeModel(const std::string& platform, inference::ModelMetadataResponse* response);

}  // namespace digits
