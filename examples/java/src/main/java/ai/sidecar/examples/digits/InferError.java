package ai.sidecar.examples.digits;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/** A request this server refuses, with the gRPC status and a message naming what is wrong. */
final class InferError extends Exception {
    private static final long serialVersionUID = 1L;

    private final Status.Code code;

    private InferError(Status.Code code, String message) {
        // No stack trace: a refused request is an answer, not a fault of this server.
        super(message, null, false, false);
        this.code = code;
    }

    static InferError invalid(String message) {
        return new InferError(Status.Code.INVALID_ARGUMENT, message);
    }

    static InferError notFound(String message) {
        return new InferError(Status.Code.NOT_FOUND, message);
    }

    Status.Code code() {
        return code;
    }

    StatusRuntimeException asStatus() {
        return Status.fromCode(code).withDescription(getMessage()).asRuntimeException();
    }
}
