#include "digits_model.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace digits {
namespace {

using Json = nlohmann::json;

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("digits weights " + path + ": " + what);
}

const Json& Field(const std::string& path, const Json& document, const std::string& key) {
  auto found = document.find(key);
  if (found == document.end()) Fail(path, "missing '" + key + "'");
  return *found;
}

// One finite number; JSON numbers are parsed with strtod, so they round-trip doubles exactly.
double Number(const std::string& path, const std::string& key, const Json& value) {
  if (!value.is_number()) Fail(path, "'" + key + "' is not numeric");
  const double number = value.get<double>();
  if (!std::isfinite(number)) Fail(path, "'" + key + "' holds NaN or infinity");
  return number;
}

// A JSON array of exactly `size` elements, with the same wording as the Python loader.
const Json& Array(const std::string& path, const std::string& key, const Json& value,
                  std::size_t size, const std::string& expected) {
  if (!value.is_array() || value.size() != size) {
    Fail(path, "'" + key + "' has the wrong shape, expected " + expected);
  }
  return value;
}

}  // namespace

Model Model::Load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) Fail(path, "cannot read JSON: cannot open the file");
  std::stringstream text;
  text << file.rdbuf();
  Json document;
  try {
    document = Json::parse(text.str());
  } catch (const Json::parse_error& error) {
    Fail(path, std::string("cannot read JSON: ") + error.what());
  }
  if (!document.is_object()) Fail(path, "expected a JSON object at the top");
  const Json& format = Field(path, document, "format");
  if (!format.is_string() || format.get<std::string>() != kFormat) {
    Fail(path, "format is " + format.dump() + ", expected '" + kFormat + "'");
  }

  Model model;
  model.input_scale_ = Number(path, "input_scale", Field(path, document, "input_scale"));
  if (model.input_scale_ <= 0.0) Fail(path, "'input_scale' must be > 0");

  const std::string shape = "[" + std::to_string(kFeatures) + ", " + std::to_string(kClasses) + "]";
  const Json& weights = Array(path, "weights", Field(path, document, "weights"), kFeatures, shape);
  for (std::size_t i = 0; i < kFeatures; ++i) {
    const Json& row = Array(path, "weights", weights[i], kClasses, shape);
    for (std::size_t j = 0; j < kClasses; ++j) model.weights_[i][j] = Number(path, "weights", row[j]);
  }
  const std::string vector = "[" + std::to_string(kClasses) + "]";
  const Json& bias = Array(path, "bias", Field(path, document, "bias"), kClasses, vector);
  const Json& classes = Array(path, "classes", Field(path, document, "classes"), kClasses, vector);
  for (std::size_t j = 0; j < kClasses; ++j) {
    model.bias_[j] = Number(path, "bias", bias[j]);
    // As numpy's astype(int64) on the parsed float64: truncation toward zero.
    model.classes_[j] = static_cast<std::int64_t>(Number(path, "classes", classes[j]));
  }
  return model;
}

Prediction Model::Predict(const float* pixels, std::size_t rows) const {
  Prediction out;
  out.labels.resize(rows);
  out.probabilities.resize(rows * kClasses);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* x = pixels + r * kFeatures;
    // README steps 1-2: scale by division (not a reciprocal), sum over features, then the bias.
    std::array<double, kClasses> z{};
    for (std::size_t i = 0; i < kFeatures; ++i) {
      const double s = static_cast<double>(x[i]) / input_scale_;
      for (std::size_t j = 0; j < kClasses; ++j) z[j] += s * weights_[i][j];
    }
    std::size_t best = 0;
    for (std::size_t j = 0; j < kClasses; ++j) {
      z[j] += bias_[j];
      // Replace only on a strictly greater logit: ties go to the lowest index, as numpy's argmax.
      if (z[j] > z[best]) best = j;
    }
    out.labels[r] = classes_[best];
    // Step 3: softmax shifted by the largest logit; step 4: round to float32 last.
    const double m = z[best];
    std::array<double, kClasses> e{};
    double total = 0.0;
    for (std::size_t j = 0; j < kClasses; ++j) {
      e[j] = std::exp(z[j] - m);
      total += e[j];
    }
    for (std::size_t j = 0; j < kClasses; ++j) {
      out.probabilities[r * kClasses + j] = static_cast<float>(e[j] / total);
    }
  }
  return out;
}

}  // namespace digits
