package ai.sidecar.examples.digits;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The digits model as a pure function of its weights file. Knows nothing about gRPC or OIP.
 *
 * <p>A transcription of the function examples/digits/README.md defines (the Python reference is
 * examples/python/digits_model.py): pixels divided by input_scale, an affine map and a softmax, all
 * in doubles; the label is the first index of the largest logit; probabilities are rounded to
 * float last.
 */
public final class DigitsModel {
    public static final String FORMAT = "ai-sidecar-digits/1";
    public static final int FEATURES = 64;
    public static final int CLASSES = 10;

    private final double[] weights; // [FEATURES * CLASSES], row i = feature i's weight per class
    private final double[] bias; // [CLASSES]
    private final double inputScale;
    private final long[] classes; // [CLASSES]: the label each column stands for

    /** Labels long[n] and probabilities float[n * CLASSES], row-major. */
    public record Prediction(long[] labels, float[] probabilities) {}

    /** A weights file this model refuses; the message names the file and the field. */
    public static final class BadWeights extends Exception {
        private static final long serialVersionUID = 1L;

        BadWeights(Path path, String problem) {
            super("digits weights " + path + ": " + problem);
        }
    }

    private DigitsModel(double[] weights, double[] bias, double inputScale, long[] classes) {
        this.weights = weights;
        this.bias = bias;
        this.inputScale = inputScale;
        this.classes = classes;
    }

    /** Read a weights.json of format ai-sidecar-digits/1. */
    public static DigitsModel load(Path path) throws BadWeights {
        JsonElement parsed;
        try {
            parsed = JsonParser.parseString(Files.readString(path, StandardCharsets.UTF_8));
        } catch (IOException | JsonParseException error) {
            throw new BadWeights(path, "cannot read JSON: " + error.getMessage());
        }
        if (!parsed.isJsonObject()) {
            throw new BadWeights(path, "expected a JSON object at the top");
        }
        JsonObject document = parsed.getAsJsonObject();
        JsonElement format = document.get("format");
        if (format == null || !format.isJsonPrimitive() || !FORMAT.equals(format.getAsString())) {
            throw new BadWeights(path, "format is " + format + ", expected '" + FORMAT + "'");
        }
        double inputScale = numbers(path, document, "input_scale")[0];
        if (!(inputScale > 0.0)) {
            throw new BadWeights(path, "'input_scale' is " + inputScale + ", must be > 0");
        }
        double[] weights = numbers(path, document, "weights", FEATURES, CLASSES);
        double[] bias = numbers(path, document, "bias", CLASSES);
        double[] classValues = numbers(path, document, "classes", CLASSES);
        long[] classes = new long[CLASSES];
        for (int j = 0; j < CLASSES; j++) {
            classes[j] = (long) classValues[j];
        }
        return new DigitsModel(weights, bias, inputScale, classes);
    }

    /** Predict each of {@code rows} images held row-major in {@code pixels} (values 0..16). */
    public Prediction predict(float[] pixels, int rows) {
        if (pixels.length != rows * FEATURES) {
            throw new IllegalArgumentException(
                    "digits model expects " + rows + " x " + FEATURES + " pixels, got " + pixels.length);
        }
        long[] labels = new long[rows];
        float[] probabilities = new float[rows * CLASSES];
        double[] logits = new double[CLASSES];
        double[] exps = new double[CLASSES];
        for (int r = 0; r < rows; r++) {
            Arrays.fill(logits, 0.0);
            for (int i = 0; i < FEATURES; i++) {
                // Divide rather than multiply by a reciprocal: README.md fixes the rounding.
                double scaled = (double) pixels[r * FEATURES + i] / inputScale;
                for (int j = 0; j < CLASSES; j++) {
                    logits[j] += scaled * weights[i * CLASSES + j];
                }
            }
            int best = 0;
            for (int j = 0; j < CLASSES; j++) {
                logits[j] += bias[j];
                // Strictly greater: ties go to the lowest index, as numpy's argmax does.
                if (logits[j] > logits[best]) {
                    best = j;
                }
            }
            double max = logits[best];
            double sum = 0.0;
            for (int j = 0; j < CLASSES; j++) {
                exps[j] = Math.exp(logits[j] - max);
                sum += exps[j];
            }
            for (int j = 0; j < CLASSES; j++) {
                probabilities[r * CLASSES + j] = (float) (exps[j] / sum);
            }
            labels[r] = classes[best];
        }
        return new Prediction(labels, probabilities);
    }

    /** The numbers of document[key], checked to have exactly {@code shape}, flattened row-major. */
    private static double[] numbers(Path path, JsonObject document, String key, int... shape)
            throws BadWeights {
        JsonElement value = document.get(key);
        if (value == null) {
            throw new BadWeights(path, "missing '" + key + "'");
        }
        List<Integer> actual = shapeOf(value);
        List<Integer> expected = Arrays.stream(shape).boxed().toList();
        if (!actual.equals(expected)) {
            throw new BadWeights(path, "'" + key + "' has shape " + actual + ", expected " + expected);
        }
        List<Double> flat = new ArrayList<>();
        if (!flatten(value, 0, shape, flat)) {
            throw new BadWeights(path, "'" + key + "' is not a rectangular array of numbers");
        }
        double[] out = new double[flat.size()];
        for (int k = 0; k < out.length; k++) {
            out[k] = flat.get(k);
            if (!Double.isFinite(out[k])) {
                throw new BadWeights(path, "'" + key + "' holds NaN or infinity");
            }
        }
        return out;
    }

    /** The shape a value appears to have, following the first element of each array. */
    private static List<Integer> shapeOf(JsonElement value) {
        List<Integer> shape = new ArrayList<>();
        while (value.isJsonArray()) {
            JsonArray array = value.getAsJsonArray();
            shape.add(array.size());
            if (array.isEmpty()) {
                break;
            }
            value = array.get(0);
        }
        return shape;
    }

    private static boolean flatten(JsonElement value, int depth, int[] shape, List<Double> out) {
        if (depth == shape.length) {
            if (!value.isJsonPrimitive() || !((JsonPrimitive) value).isNumber()) {
                return false;
            }
            // Gson keeps the text; getAsDouble is Double.parseDouble, correctly rounded.
            out.add(value.getAsDouble());
            return true;
        }
        if (!value.isJsonArray() || value.getAsJsonArray().size() != shape[depth]) {
            return false;
        }
        for (JsonElement item : value.getAsJsonArray()) {
            if (!flatten(item, depth + 1, shape, out)) {
                return false;
            }
        }
        return true;
    }
}
