// The "echo" model beside digits, as examples/python/echo_model.py serves it: BYTES in, the same
// BYTES and their lengths out, so BYTES tensors can be checked end to end. Input TEXT BYTES [-1];
// outputs ECHO BYTES [-1] (each element as it came, any bytes) and LENGTH INT64 [-1]. A request in
// raw_input_contents is answered in raw_output_contents, one in typed contents likewise.
#pragma once

#include <string>

#include <grpcpp/grpcpp.h>

#include "inference/grpc_service.pb.h"

namespace digits {

inline constexpr char kEchoModel[] = "echo";

// NOT_FOUND unless `version` is empty (the latest) or the echo model's one version.
grpc::Status CheckEchoVersion(const std::string& version);
void DescribeEcho(const std::string& platform, inference::ModelMetadataResponse* response);
// Validates (INVALID_ARGUMENT naming what is wrong) and answers.
grpc::Status Echo(const inference::ModelInferRequest& request,
                  inference::ModelInferResponse* response);

}  // namespace digits
