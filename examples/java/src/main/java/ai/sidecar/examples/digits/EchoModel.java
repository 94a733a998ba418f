package ai.sidecar.examples.digits;

import ai.sidecar.inference.InferTensorContents;
import ai.sidecar.inference.ModelInferRequest;
import ai.sidecar.inference.ModelInferResponse;
import ai.sidecar.inference.ModelMetadataResponse;
import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The "echo" model beside digits, as examples/python/echo_model.py serves it: BYTES in, the same
 * BYTES and their lengths out, so BYTES tensors can be checked end to end. Input TEXT BYTES [-1];
 * outputs ECHO BYTES [-1] (each element as it came, any bytes) and LENGTH INT64 [-1]. A request
 * in raw_input_contents is answered in raw_output_contents, one in typed contents likewise.
 */
final class EchoModel {
    static final String MODEL = "echo";
    static final String VERSION = "1";
    static final String INPUT = "TEXT";
    static final List<String> OUTPUTS = List.of("ECHO", "LENGTH");

    private EchoModel() {}

    static void checkVersion(String version) throws InferError {
        if (!version.isEmpty() && !version.equals(VERSION)) {
            throw InferError.notFound("model \"" + MODEL + "\" has no version \"" + version
                    + "\"; its only version is \"" + VERSION + "\"");
        }
    }

    static ModelMetadataResponse metadata() {
        return ModelMetadataResponse.newBuilder()
                .setName(MODEL)
                .addVersions(VERSION)
                .setPlatform("java")
                .addInputs(tensor(INPUT, "BYTES"))
                .addOutputs(tensor("ECHO", "BYTES"))
                .addOutputs(tensor("LENGTH", "INT64"))
                .build();
    }

    private static ModelMetadataResponse.TensorMetadata tensor(String name, String datatype) {
        return ModelMetadataResponse.TensorMetadata.newBuilder()
                .setName(name).setDatatype(datatype).addShape(-1).build();
    }

    private static InferError invalid(String message) {
        return InferError.invalid("model \"" + MODEL + "\": " + message);
    }

    static ModelInferResponse infer(ModelInferRequest request) throws InferError {
        checkVersion(request.getModelVersion());
        if (request.getInputsCount() != 1 || !request.getInputs(0).getName().equals(INPUT)) {
            throw invalid("expects one input \"" + INPUT + "\"");
        }
        ModelInferRequest.InferInputTensor tensor = request.getInputs(0);
        if (!tensor.getDatatype().equals("BYTES")) {
            throw invalid("input \"" + INPUT + "\" is BYTES, got " + tensor.getDatatype());
        }
        if (tensor.getShapeCount() != 1) {
            throw invalid("input \"" + INPUT + "\" has shape " + tensor.getShapeList()
                    + ", model expects [-1]");
        }
        boolean raw = request.getRawInputContentsCount() > 0;
        if (raw && tensor.hasContents() && tensor.getContents().getBytesContentsCount() > 0) {
            throw invalid("input \"" + INPUT + "\" has both typed contents and raw_input_contents");
        }
        List<ByteString> items =
                raw ? split(request.getRawInputContents(0)) : tensor.getContents().getBytesContentsList();
        if (items.size() != tensor.getShape(0)) {
            throw invalid("input \"" + INPUT + "\" has shape [" + tensor.getShape(0) + "] but "
                    + items.size() + " elements");
        }
        List<String> names = new ArrayList<>();
        for (ModelInferRequest.InferRequestedOutputTensor output : request.getOutputsList()) {
            if (!OUTPUTS.contains(output.getName()) || names.contains(output.getName())) {
                throw invalid("output \"" + output.getName() + "\" is unknown or asked twice");
            }
            names.add(output.getName());
        }
        if (names.isEmpty()) {
            names.addAll(OUTPUTS);
        }
        ModelInferResponse.Builder response = ModelInferResponse.newBuilder()
                .setModelName(MODEL).setModelVersion(VERSION).setId(request.getId());
        for (String name : names) {
            boolean echo = name.equals("ECHO");
            ModelInferResponse.InferOutputTensor.Builder out =
                    ModelInferResponse.InferOutputTensor.newBuilder()
                            .setName(name).setDatatype(echo ? "BYTES" : "INT64").addShape(items.size());
            if (raw) {
                response.addRawOutputContents(echo ? join(items) : lengths(items));
            } else {
                InferTensorContents.Builder contents = InferTensorContents.newBuilder();
                for (ByteString item : items) {
                    if (echo) {
                        contents.addBytesContents(item);
                    } else {
                        contents.addInt64Contents(item.size());
                    }
                }
                out.setContents(contents);
            }
            response.addOutputs(out);
        }
        return response.build();
    }

    private static List<ByteString> split(ByteString raw) throws InferError {
        List<ByteString> items = new ArrayList<>();
        ByteBuffer buffer = raw.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        while (buffer.hasRemaining()) {
            if (buffer.remaining() < 4) {
                throw invalid("input \"" + INPUT + "\": raw BYTES end inside a length prefix");
            }
            long n = Integer.toUnsignedLong(buffer.getInt());
            if (n > buffer.remaining()) {
                throw invalid("input \"" + INPUT + "\": raw BYTES element " + items.size()
                        + " overruns the buffer");
            }
            int start = buffer.position();
            items.add(raw.substring(start, start + (int) n));
            buffer.position(start + (int) n);
        }
        return items;
    }

    private static ByteString join(List<ByteString> items) {
        ByteString.Output out = ByteString.newOutput();
        ByteBuffer prefix = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        for (ByteString item : items) {
            prefix.clear();
            prefix.putInt(item.size());
            out.write(prefix.array(), 0, 4);
            byte[] bytes = item.toByteArray();
            out.write(bytes, 0, bytes.length);
        }
        return out.toByteString();
    }

    private static ByteString lengths(List<ByteString> items) {
        ByteBuffer buffer = ByteBuffer.allocate(8 * items.size()).order(ByteOrder.LITTLE_ENDIAN);
        for (ByteString item : items) {
            buffer.putLong(item.size());
        }
        return ByteString.copyFrom(buffer.array());
    }
}
