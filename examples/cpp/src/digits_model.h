// The digits model as a pure function of its weights file. Knows nothing about gRPC or OIP.
//
// The function is defined in examples/digits/README.md; this is a direct transcription of it,
// matching examples/python/digits_model.py: float64 throughout, probabilities rounded to float32
// last, the label taken from the largest logit with ties going to the lowest index.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace digits {

inline constexpr std::size_t kFeatures = 64;
inline constexpr std::size_t kClasses = 10;
inline constexpr const char* kFormat = "ai-sidecar-digits/1";

struct Prediction {
  std::vector<std::int64_t> labels;  // [rows]
  std::vector<float> probabilities;  // [rows, kClasses], row-major
};

class Model {
 public:
  // Reads a weights.json; a malformed file throws std::runtime_error naming the file and the field.
  static Model Load(const std::string& path);

  // Labels and probabilities for pixels[rows * kFeatures] (row-major, values 0..16).
  Prediction Predict(const float* pixels, std::size_t rows) const;

 private:
  std::array<std::array<double, kClasses>, kFeatures> weights_{};  // [feature][class]
  std::array<double, kClasses> bias_{};
  double input_scale_ = 1.0;
  std::array<std::int64_t, kClasses> classes_{};  // the label each column stands for
};

}  // namespace digits
