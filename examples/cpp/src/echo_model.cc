#include "echo_model.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace digits {
namespace {

constexpr char kVersion[] = "1";
constexpr char kInput[] = "TEXT";

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      std::string("model \"") + kEchoModel + "\": " + message);
}

void AddLength(std::string* out, std::uint32_t n) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

bool Split(const std::string& raw, std::vector<std::string>* items) {
  std::size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) return false;
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i) {
      n |= static_cast<std::uint32_t>(static_cast<unsigned char>(raw[pos + i])) << (8 * i);
    }
    pos += 4;
    if (n > raw.size() - pos) return false;
    items->push_back(raw.substr(pos, n));
    pos += n;
  }
  return true;
}

}  // namespace

grpc::Status CheckEchoVersion(const std::string& version) {
  if (!version.empty() && version != kVersion) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string("model \"") + kEchoModel +
                                                         "\" has no version \"" + version +
                                                         "\"; its only version is \"" + kVersion + "\"");
  }
  return grpc::Status::OK;
}

void DescribeEcho(const std::string& platform, inference::ModelMetadataResponse* response) {
  response->set_name(kEchoModel);
  response->add_versions(kVersion);
  response->set_platform(platform);
  auto* input = response->add_inputs();
  input->set_name(kInput);
  input->set_datatype("BYTES");
  input->add_shape(-1);
  auto* echo = response->add_outputs();
  echo->set_name("ECHO");
  echo->set_datatype("BYTES");
  echo->add_shape(-1);
  auto* length = response->add_outputs();
  length->set_name("LENGTH");
  length->set_datatype("INT64");
  length->add_shape(-1);
}

grpc::Status Echo(const inference::ModelInferRequest& request,
                  inference::ModelInferResponse* response) {
  grpc::Status status = CheckEchoVersion(request.model_version());
  if (!status.ok()) return status;
  if (request.inputs_size() != 1 || request.inputs(0).name() != kInput) {
    return Invalid(std::string("expects one input \"") + kInput + "\"");
  }
  const auto& tensor = request.inputs(0);
  if (tensor.datatype() != "BYTES") {
    return Invalid(std::string("input \"") + kInput + "\" is BYTES, got " + tensor.datatype());
  }
  if (tensor.shape_size() != 1) return Invalid(std::string("input \"") + kInput + "\" must have shape [-1]");
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && tensor.contents().bytes_contents_size() > 0) {
    return Invalid(std::string("input \"") + kInput +
                   "\" has both typed contents and raw_input_contents");
  }
  std::vector<std::string> items;
  if (raw) {
    if (!Split(request.raw_input_contents(0), &items)) {
      return Invalid(std::string("input \"") + kInput +
                     "\": raw BYTES are not whole length-prefixed elements");
    }
  } else {
    items.assign(tensor.contents().bytes_contents().begin(), tensor.contents().bytes_contents().end());
  }
  if (static_cast<std::int64_t>(items.size()) != tensor.shape(0)) {
    return Invalid(std::string("input \"") + kInput + "\" has shape [" + std::to_string(tensor.shape(0)) +
                   "] but " + std::to_string(items.size()) + " elements");
  }
  std::vector<std::string> names;
  for (const auto& output : request.outputs()) {
    const std::string& name = output.name();
    bool known = name == "ECHO" || name == "LENGTH";
    for (const auto& seen : names) known = known && seen != name;
    if (!known) return Invalid("output \"" + name + "\" is unknown or asked twice");
    names.push_back(name);
  }
  if (names.empty()) names = {"ECHO", "LENGTH"};
  response->set_model_name(kEchoModel);
  response->set_model_version(kVersion);
  response->set_id(request.id());
  for (const auto& name : names) {
    const bool echo = name == "ECHO";
    auto* out = response->add_outputs();
    out->set_name(name);
    out->set_datatype(echo ? "BYTES" : "INT64");
    out->add_shape(static_cast<std::int64_t>(items.size()));
    if (raw) {
      std::string* blob = response->add_raw_output_contents();
      for (const auto& item : items) {
        if (echo) {
          AddLength(blob, static_cast<std::uint32_t>(item.size()));
          blob->append(item);
        } else {
          std::int64_t n = static_cast<std::int64_t>(item.size());
          char bytes[8];
          for (int i = 0; i < 8; ++i) {
            bytes[i] = static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff);
          }
          blob->append(bytes, 8);
        }
      }
    } else {
      for (const auto& item : items) {
        if (echo) {
          out->mutable_contents()->add_bytes_contents(item);
        } else {
          out->mutable_contents()->add_int64_contents(static_cast<std::int64_t>(item.size()));
        }
      }
    }
  }
  return grpc::Status::OK;
}

}  // namespace digits
