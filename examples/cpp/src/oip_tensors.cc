#include "oip_tensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace digits {
namespace {

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw tensor contents are little-endian; this file copies them as native bytes"
#endif

using inference::InferTensorContents;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

const std::string kQuotedModel = std::string("\"") + kModel + "\"";
const std::string kQuotedInput = std::string("\"") + kInput + "\"";

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

std::string Quoted(const std::string& text) { return "\"" + text + "\""; }

template <typename Dims>
std::string Shape(const Dims& dims) {
  std::string out = "[";
  for (int i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

// n * k exactly, in decimal, for any n >= 0: a hostile shape must not overflow the message.
std::string Times(std::int64_t n, unsigned k) {
  std::string digits = std::to_string(n);
  unsigned carry = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    const unsigned value = static_cast<unsigned>(*it - '0') * k + carry;
    *it = static_cast<char>('0' + value % 10);
    carry = value / 10;
  }
  for (; carry != 0; carry /= 10) digits.insert(digits.begin(), static_cast<char>('0' + carry % 10));
  return digits;
}

// The first contents field other than fp32_contents that holds values, in field-number order.
const char* OtherContents(const InferTensorContents& contents) {
  if (contents.bool_contents_size()) return "bool_contents";
  if (contents.int_contents_size()) return "int_contents";
  if (contents.int64_contents_size()) return "int64_contents";
  if (contents.uint_contents_size()) return "uint_contents";
  if (contents.uint64_contents_size()) return "uint64_contents";
  if (contents.fp64_contents_size()) return "fp64_contents";
  if (contents.bytes_contents_size()) return "bytes_contents";
  return nullptr;
}

}  // namespace

grpc::Status CheckModel(const std::string& name, const std::string& version) {
  if (name != kModel) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "model " + Quoted(name) + " is not served here; this server serves " +
                            kQuotedModel);
  }
  if (!version.empty() && version != kVersion) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "model " + kQuotedModel + " has no version " + Quoted(version) +
                            "; its only version is " + Quoted(kVersion));
  }
  return grpc::Status::OK;
}

grpc::Status DecodeInput(const ModelInferRequest& request, Pixels* out) {
  for (const auto& tensor : request.inputs()) {
    if (tensor.name() != kInput) {
      return Invalid("model " + kQuotedModel + " has no input " + Quoted(tensor.name()) +
                     "; its input is " + kQuotedInput);
    }
  }
  if (request.inputs_size() == 0) {
    return Invalid("request has no inputs; model " + kQuotedModel + " expects input " +
                   kQuotedInput);
  }
  if (request.inputs_size() > 1) {
    return Invalid("input " + kQuotedInput + " appears " + std::to_string(request.inputs_size()) +
                   " times");
  }
  const auto& tensor = request.inputs(0);
  if (tensor.datatype() != "FP32") {
    return Invalid("input " + kQuotedInput + " has datatype " + Quoted(tensor.datatype()) +
                   ", model " + kQuotedModel + " expects \"FP32\"");
  }
  const auto& dims = tensor.shape();
  if (dims.size() != 2 || dims[1] != static_cast<std::int64_t>(kFeatures) || dims[0] < 1) {
    return Invalid("input " + kQuotedInput + " has shape " + Shape(dims) + ", model " +
                   kQuotedModel + " expects [-1, " + std::to_string(kFeatures) +
                   "] with at least one row");
  }
  const std::int64_t rows = dims[0];
  out->raw = request.raw_input_contents_size() > 0;
  if (out->raw) {
    if (request.raw_input_contents_size() != request.inputs_size()) {
      return Invalid("request has " + std::to_string(request.raw_input_contents_size()) +
                     " raw_input_contents for " + std::to_string(request.inputs_size()) +
                     " input(s)");
    }
    if (tensor.has_contents()) {
      return Invalid("input " + kQuotedInput + " has both contents and raw_input_contents");
    }
    const std::string& data = request.raw_input_contents(0);
    const std::size_t row_bytes = kFeatures * sizeof(float);
    if (data.size() % row_bytes != 0 || data.size() / row_bytes != static_cast<std::uint64_t>(rows)) {
      return Invalid("raw_input_contents[0] of input " + kQuotedInput + " has " +
                     std::to_string(data.size()) + " bytes, shape " + Shape(dims) +
                     " of FP32 needs " + Times(rows, row_bytes));
    }
    out->values.resize(data.size() / sizeof(float));
    std::memcpy(out->values.data(), data.data(), data.size());
  } else {
    if (const char* other = OtherContents(tensor.contents())) {
      return Invalid("input " + kQuotedInput + " is FP32 but carries contents." + other +
                     "; FP32 values go in contents.fp32_contents or raw_input_contents");
    }
    const auto& values = tensor.contents().fp32_contents();
    if (values.size() % kFeatures != 0 ||
        static_cast<std::uint64_t>(values.size()) / kFeatures != static_cast<std::uint64_t>(rows)) {
      return Invalid("input " + kQuotedInput + " has shape " + Shape(dims) + " (" +
                     Times(rows, kFeatures) + " elements) but " + std::to_string(values.size()) +
                     " values in contents.fp32_contents");
    }
    out->values.assign(values.begin(), values.end());
  }
  out->rows = static_cast<std::size_t>(rows);
  const bool finite = std::all_of(out->values.begin(), out->values.end(),
                                  [](float v) { return std::isfinite(v); });
  if (!finite) {
    return Invalid("input " + kQuotedInput + " holds NaN or infinite values; pixels are 0..16");
  }
  return grpc::Status::OK;
}

grpc::Status RequestedOutputs(const ModelInferRequest& request, std::vector<std::string>* names) {
  names->clear();
  for (const auto& output : request.outputs()) names->push_back(output.name());
  for (const auto& name : *names) {
    if (name != kLabel && name != kProbabilities) {
      return Invalid("model " + kQuotedModel + " has no output " + Quoted(name) +
                     "; its outputs are " + Quoted(kLabel) + ", " + Quoted(kProbabilities));
    }
    const auto count = std::count(names->begin(), names->end(), name);
    if (count > 1) {
      return Invalid("output " + Quoted(name) + " is requested " + std::to_string(count) +
                     " times");
    }
  }
  if (names->empty()) *names = {kLabel, kProbabilities};
  return grpc::Status::OK;
}

grpc::Status SleepMs(const ModelInferRequest& request, std::int64_t* ms) {
  *ms = 0;
  const auto found = request.parameters().find("sleep_ms");
  if (found == request.parameters().end()) return grpc::Status::OK;
  const auto& parameter = found->second;
  if (parameter.parameter_choice_case() != inference::InferParameter::kInt64Param) {
    // Named as Python's WhichOneof does: the field's name, or None when no choice is set.
    const auto* field = inference::InferParameter::descriptor()->FindFieldByNumber(
        static_cast<int>(parameter.parameter_choice_case()));
    return Invalid("parameter \"sleep_ms\" must be a non-negative int64_param, got " +
                   (field ? field->name() : std::string("None")));
  }
  if (parameter.int64_param() < 0) {
    return Invalid("parameter \"sleep_ms\" is " + std::to_string(parameter.int64_param()) +
                   ", must be >= 0");
  }
  *ms = parameter.int64_param();
  return grpc::Status::OK;
}

void EncodeResponse(const ModelInferRequest& request, const std::vector<std::string>& names,
                    const Prediction& prediction, bool raw, ModelInferResponse* response) {
  response->set_model_name(kModel);
  response->set_model_version(kVersion);
  response->set_id(request.id());
  const auto rows = static_cast<std::int64_t>(prediction.labels.size());
  for (const auto& name : names) {
    auto* output = response->add_outputs();
    output->set_name(name);
    output->add_shape(rows);
    if (name == kLabel) {
      output->set_datatype("INT64");
      const auto& labels = prediction.labels;
      if (raw) {
        response->add_raw_output_contents(reinterpret_cast<const char*>(labels.data()),
                                          labels.size() * sizeof(labels[0]));
      } else {
        output->mutable_contents()->mutable_int64_contents()->Add(labels.begin(), labels.end());
      }
    } else {
      output->set_datatype("FP32");
      output->add_shape(static_cast<std::int64_t>(kClasses));
      const auto& probabilities = prediction.probabilities;
      if (raw) {
        response->add_raw_output_contents(reinterpret_cast<const char*>(probabilities.data()),
                                          probabilities.size() * sizeof(probabilities[0]));
      } else {
        output->mutable_contents()->mutable_fp32_contents()->Add(probabilities.begin(),
                                                                 probabilities.end());
      }
    }
  }
}

void DescribeModel(const std::string& platform, inference::ModelMetadataResponse* response) {
  response->set_name(kModel);
  response->add_versions(kVersion);
  response->set_platform(platform);
  auto* input = response->add_inputs();
  input->set_name(kInput);
  input->set_datatype("FP32");
  input->add_shape(-1);
  input->add_shape(static_cast<std::int64_t>(kFeatures));
  auto* label = response->add_outputs();
  label->set_name(kLabel);
  label->set_datatype("INT64");
  label->add_shape(-1);
  auto* probabilities = response->add_outputs();
  probabilities->set_name(kProbabilities);
  probabilities->set_datatype("FP32");
  probabilities->add_shape(-1);
  probabilities->add_shape(static_cast<std::int64_t>(kClasses));
}

}  // namespace digits
