package ai.sidecar.examples.digits;

import ai.sidecar.inference.InferTensorContents;
import ai.sidecar.inference.ModelInferRequest;
import ai.sidecar.inference.ModelInferResponse;
import ai.sidecar.inference.ModelMetadataResponse;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.UnsafeByteOperations;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The digits model's OIP v2 identity and tensors: which model a call addresses, INPUT0 decoded and
 * checked, outputs encoded in the request's own form. Knows nothing about servers or transports.
 *
 * <p>Messages follow examples/python/digits_server.py word for word, so a client sees the same
 * text whichever language serves the model.
 */
final class InferCodec {
    static final String MODEL = "digits";
    static final String VERSION = "1";
    static final String INPUT = "INPUT0";
    static final String LABEL = "LABEL";
    static final String PROBABILITIES = "PROBABILITIES";
    static final List<String> OUTPUTS = List.of(LABEL, PROBABILITIES);

    private static final int FEATURES = DigitsModel.FEATURES;
    private static final int CLASSES = DigitsModel.CLASSES;
    private static final int FP32_FIELD = InferTensorContents.FP32_CONTENTS_FIELD_NUMBER;

    /** The pixels of INPUT0, row-major [rows, 64], and whether they came as raw_input_contents. */
    record Pixels(float[] values, int rows, boolean raw) {}

    private InferCodec() {}

    /** Throw NOT_FOUND unless name/version address this model; an empty version means latest. */
    static void checkModel(String name, String version) throws InferError {
        if (!name.equals(MODEL)) {
            throw InferError.notFound(
                    "model \"" + name + "\" is not served here; this server serves \"" + MODEL + "\"");
        }
        if (!version.isEmpty() && !version.equals(VERSION)) {
            throw InferError.notFound("model \"" + MODEL + "\" has no version \"" + version
                    + "\"; its only version is \"" + VERSION + "\"");
        }
    }

    static Pixels decodeInput(ModelInferRequest request) throws InferError {
        for (ModelInferRequest.InferInputTensor tensor : request.getInputsList()) {
            if (!tensor.getName().equals(INPUT)) {
                throw InferError.invalid("model \"" + MODEL + "\" has no input \"" + tensor.getName()
                        + "\"; its input is \"" + INPUT + "\"");
            }
        }
        if (request.getInputsCount() == 0) {
            throw InferError.invalid(
                    "request has no inputs; model \"" + MODEL + "\" expects input \"" + INPUT + "\"");
        }
        if (request.getInputsCount() > 1) {
            throw InferError.invalid(
                    "input \"" + INPUT + "\" appears " + request.getInputsCount() + " times");
        }
        ModelInferRequest.InferInputTensor tensor = request.getInputs(0);
        if (!tensor.getDatatype().equals("FP32")) {
            throw InferError.invalid("input \"" + INPUT + "\" has datatype \"" + tensor.getDatatype()
                    + "\", model \"" + MODEL + "\" expects \"FP32\"");
        }
        List<Long> dims = tensor.getShapeList();
        if (dims.size() != 2 || dims.get(1) != FEATURES || dims.get(0) < 1) {
            throw InferError.invalid("input \"" + INPUT + "\" has shape " + shape(dims) + ", model \""
                    + MODEL + "\" expects " + shape(List.of(-1L, (long) FEATURES))
                    + " with at least one row");
        }
        long rows = dims.get(0);
        String count = product(rows, FEATURES);
        // A shape too large for one Java array cannot match data that fits in a message.
        boolean fits = rows <= Integer.MAX_VALUE / (FEATURES * 4);
        boolean raw = request.getRawInputContentsCount() > 0;
        float[] pixels;
        if (raw) {
            if (request.getRawInputContentsCount() != request.getInputsCount()) {
                throw InferError.invalid("request has " + request.getRawInputContentsCount()
                        + " raw_input_contents for " + request.getInputsCount() + " input(s)");
            }
            if (tensor.hasContents()) {
                throw InferError.invalid(
                        "input \"" + INPUT + "\" has both contents and raw_input_contents");
            }
            ByteString data = request.getRawInputContents(0);
            if (!fits || data.size() != rows * FEATURES * 4) {
                throw InferError.invalid("raw_input_contents[0] of input \"" + INPUT + "\" has "
                        + data.size() + " bytes, shape " + shape(dims) + " of FP32 needs "
                        + product(rows, FEATURES * 4));
            }
            pixels = new float[(int) rows * FEATURES];
            data.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(pixels);
        } else {
            InferTensorContents contents = tensor.getContents();
            for (FieldDescriptor field : contents.getAllFields().keySet()) {
                if (field.getNumber() != FP32_FIELD) {
                    throw InferError.invalid("input \"" + INPUT + "\" is FP32 but carries contents."
                            + field.getName() + "; FP32 values go in contents.fp32_contents or "
                            + "raw_input_contents");
                }
            }
            int values = contents.getFp32ContentsCount();
            if (!fits || values != rows * FEATURES) {
                throw InferError.invalid("input \"" + INPUT + "\" has shape " + shape(dims) + " ("
                        + count + " elements) but " + values + " values in contents.fp32_contents");
            }
            pixels = new float[values];
            for (int k = 0; k < values; k++) {
                pixels[k] = contents.getFp32Contents(k);
            }
        }
        for (float pixel : pixels) {
            if (!Float.isFinite(pixel)) {
                throw InferError.invalid(
                        "input \"" + INPUT + "\" holds NaN or infinite values; pixels are 0..16");
            }
        }
        return new Pixels(pixels, (int) rows, raw);
    }

    /** Output names in the order asked for; none asked for means every output. */
    static List<String> requestedOutputs(ModelInferRequest request) throws InferError {
        List<String> names = new ArrayList<>();
        for (ModelInferRequest.InferRequestedOutputTensor output : request.getOutputsList()) {
            names.add(output.getName());
        }
        for (String name : names) {
            if (!OUTPUTS.contains(name)) {
                throw InferError.invalid("model \"" + MODEL + "\" has no output \"" + name
                        + "\"; its outputs are \"" + LABEL + "\", \"" + PROBABILITIES + "\"");
            }
            int times = Collections.frequency(names, name);
            if (times > 1) {
                throw InferError.invalid("output \"" + name + "\" is requested " + times + " times");
            }
        }
        return names.isEmpty() ? OUTPUTS : names;
    }

    /** The response in the request's own form: raw in, raw out; contents in, contents out. */
    static ModelInferResponse encodeResponse(
            ModelInferRequest request, List<String> names, DigitsModel.Prediction prediction, boolean raw) {
        ModelInferResponse.Builder response = ModelInferResponse.newBuilder()
                .setModelName(MODEL)
                .setModelVersion(VERSION)
                .setId(request.getId());
        long[] labels = prediction.labels();
        float[] probabilities = prediction.probabilities();
        int rows = labels.length;
        for (String name : names) {
            ModelInferResponse.InferOutputTensor.Builder output = response.addOutputsBuilder().setName(name);
            if (name.equals(LABEL)) {
                output.setDatatype("INT64").addShape(rows);
                if (raw) {
                    ByteBuffer bytes = ByteBuffer.allocate(rows * 8).order(ByteOrder.LITTLE_ENDIAN);
                    bytes.asLongBuffer().put(labels);
                    response.addRawOutputContents(UnsafeByteOperations.unsafeWrap(bytes.array()));
                } else {
                    InferTensorContents.Builder contents = output.getContentsBuilder();
                    for (long label : labels) {
                        contents.addInt64Contents(label);
                    }
                }
            } else {
                output.setDatatype("FP32").addShape(rows).addShape(CLASSES);
                if (raw) {
                    ByteBuffer bytes = ByteBuffer.allocate(probabilities.length * 4)
                            .order(ByteOrder.LITTLE_ENDIAN);
                    bytes.asFloatBuffer().put(probabilities);
                    response.addRawOutputContents(UnsafeByteOperations.unsafeWrap(bytes.array()));
                } else {
                    InferTensorContents.Builder contents = output.getContentsBuilder();
                    for (float p : probabilities) {
                        contents.addFp32Contents(p);
                    }
                }
            }
        }
        return response.build();
    }

    static ModelMetadataResponse modelMetadata() {
        return ModelMetadataResponse.newBuilder()
                .setName(MODEL)
                .addVersions(VERSION)
                .setPlatform("java")
                .addInputs(tensor(INPUT, "FP32", -1, FEATURES))
                .addOutputs(tensor(LABEL, "INT64", -1))
                .addOutputs(tensor(PROBABILITIES, "FP32", -1, CLASSES))
                .build();
    }

    private static ModelMetadataResponse.TensorMetadata tensor(String name, String datatype, long... dims) {
        ModelMetadataResponse.TensorMetadata.Builder tensor =
                ModelMetadataResponse.TensorMetadata.newBuilder().setName(name).setDatatype(datatype);
        for (long dim : dims) {
            tensor.addShape(dim);
        }
        return tensor.build();
    }

    private static String shape(List<Long> dims) {
        return dims.stream().map(String::valueOf).collect(Collectors.joining(", ", "[", "]"));
    }

    /** rows * factor exactly, for messages: a hostile shape must not overflow into nonsense. */
    private static String product(long rows, int factor) {
        return BigInteger.valueOf(rows).multiply(BigInteger.valueOf(factor)).toString();
    }
}
