package ai.sidecar.examples.digits;

import ai.sidecar.inference.GRPCInferenceServiceGrpc;
import ai.sidecar.inference.ModelInferRequest;
import ai.sidecar.inference.ModelInferResponse;
import ai.sidecar.inference.ModelMetadataRequest;
import ai.sidecar.inference.ModelMetadataResponse;
import ai.sidecar.inference.ModelReadyRequest;
import ai.sidecar.inference.ModelReadyResponse;
import ai.sidecar.inference.ModelStatisticsRequest;
import ai.sidecar.inference.ModelStatisticsResponse;
import ai.sidecar.inference.ModelStreamInferResponse;
import ai.sidecar.inference.ServerLiveRequest;
import ai.sidecar.inference.ServerLiveResponse;
import ai.sidecar.inference.ServerMetadataRequest;
import ai.sidecar.inference.ServerMetadataResponse;
import ai.sidecar.inference.ServerReadyRequest;
import ai.sidecar.inference.ServerReadyResponse;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.List;

/**
 * OIP v2 for model "digits" version "1" (and "echo", EchoModel) over grpc-java. RepositoryIndex
 * is left UNIMPLEMENTED, as in the Python reference. Knows the model only through
 * DigitsModel.predict and nothing about the process around it: DigitsServer starts, drains and
 * stops it.
 */
final class DigitsService extends GRPCInferenceServiceGrpc.GRPCInferenceServiceImplBase {
    static final String SERVER_NAME = "digits-java";
    static final String SERVER_VERSION = "0.1.0";

    private final DigitsModel model;
    private final Statistics statistics = new Statistics();
    private volatile boolean draining;

    DigitsService(DigitsModel model) {
        this.model = model;
    }

    /** From now on ServerReady and ModelReady answer false; calls are still served. */
    void drain() {
        draining = true;
    }

    @Override
    public void serverLive(ServerLiveRequest request, StreamObserver<ServerLiveResponse> reply) {
        answer(reply, ServerLiveResponse.newBuilder().setLive(true).build());
    }

    @Override
    public void serverReady(ServerReadyRequest request, StreamObserver<ServerReadyResponse> reply) {
        answer(reply, ServerReadyResponse.newBuilder().setReady(!draining).build());
    }

    @Override
    public void modelReady(ModelReadyRequest request, StreamObserver<ModelReadyResponse> reply) {
        try {
            if (request.getName().equals(EchoModel.MODEL)) {
                EchoModel.checkVersion(request.getVersion());
            } else {
                InferCodec.checkModel(request.getName(), request.getVersion());
            }
        } catch (InferError error) {
            reply.onError(error.asStatus());
            return;
        }
        answer(reply, ModelReadyResponse.newBuilder().setReady(!draining).build());
    }

    @Override
    public void serverMetadata(
            ServerMetadataRequest request, StreamObserver<ServerMetadataResponse> reply) {
        answer(reply, ServerMetadataResponse.newBuilder()
                .setName(SERVER_NAME)
                .setVersion(SERVER_VERSION)
                .build());
    }

    @Override
    public void modelMetadata(ModelMetadataRequest request, StreamObserver<ModelMetadataResponse> reply) {
        boolean echo = request.getName().equals(EchoModel.MODEL);
        try {
            if (echo) {
                EchoModel.checkVersion(request.getVersion());
            } else {
                InferCodec.checkModel(request.getName(), request.getVersion());
            }
        } catch (InferError error) {
            reply.onError(error.asStatus());
            return;
        }
        answer(reply, echo ? EchoModel.metadata() : InferCodec.modelMetadata());
    }

    @Override
    public void modelInfer(ModelInferRequest request, StreamObserver<ModelInferResponse> reply) {
        long started = System.nanoTime();
        if (request.getModelName().equals(EchoModel.MODEL)) {
            try {
                answer(reply, EchoModel.infer(request));
            } catch (InferError error) {
                reply.onError(error.asStatus());
            }
            return;
        }
        try {
            InferCodec.checkModel(request.getModelName(), request.getModelVersion());
        } catch (InferError error) {
            reply.onError(error.asStatus());
            return;
        }
        if (Context.current().isCancelled()) {
            // The caller gave up or its deadline passed while the call was queued.
            statistics.failure(System.nanoTime() - started);
            reply.onError(
                    Status.CANCELLED.withDescription("call cancelled before inference").asRuntimeException());
            return;
        }
        try {
            answer(reply, infer(request, started));
        } catch (InferError error) {
            statistics.failure(System.nanoTime() - started);
            reply.onError(error.asStatus());
        }
    }

    @Override
    public StreamObserver<ModelInferRequest> modelStreamInfer(
            StreamObserver<ModelStreamInferResponse> reply) {
        return new StreamObserver<>() {
            @Override
            public void onNext(ModelInferRequest request) {
                long started = System.nanoTime();
                ModelStreamInferResponse.Builder answer = ModelStreamInferResponse.newBuilder();
                if (request.getModelName().equals(EchoModel.MODEL)) {
                    try {
                        answer.setInferResponse(EchoModel.infer(request));
                    } catch (InferError error) {
                        answer.setErrorMessage(error.getMessage());
                    }
                    reply.onNext(answer.build());
                    return;
                }
                try {
                    InferCodec.checkModel(request.getModelName(), request.getModelVersion());
                } catch (InferError error) {
                    reply.onNext(answer.setErrorMessage(error.getMessage()).build());
                    return;
                }
                try {
                    answer.setInferResponse(infer(request, started));
                } catch (InferError error) {
                    statistics.failure(System.nanoTime() - started);
                    answer.setErrorMessage(error.getMessage());
                }
                reply.onNext(answer.build());
            }

            @Override
            public void onError(Throwable cause) {
                // The caller cancelled the stream; there is no one left to answer.
            }

            @Override
            public void onCompleted() {
                reply.onCompleted();
            }
        };
    }

    @Override
    public void modelStatistics(
            ModelStatisticsRequest request, StreamObserver<ModelStatisticsResponse> reply) {
        // An empty name asks for every model: here, the one.
        if (!request.getName().isEmpty() || !request.getVersion().isEmpty()) {
            String name = request.getName().isEmpty() ? InferCodec.MODEL : request.getName();
            try {
                InferCodec.checkModel(name, request.getVersion());
            } catch (InferError error) {
                reply.onError(error.asStatus());
                return;
            }
        }
        answer(reply, ModelStatisticsResponse.newBuilder().addModelStats(statistics.snapshot()).build());
    }

    /** Validate, run the model, encode; counts a success. */
    private ModelInferResponse infer(ModelInferRequest request, long started) throws InferError {
        InferCodec.Pixels pixels = InferCodec.decodeInput(request);
        List<String> names = InferCodec.requestedOutputs(request);
        long computeStarted = System.nanoTime();
        DigitsModel.Prediction prediction = model.predict(pixels.values(), pixels.rows());
        long computeNs = System.nanoTime() - computeStarted;
        ModelInferResponse response = InferCodec.encodeResponse(request, names, prediction, pixels.raw());
        statistics.success(pixels.rows(), System.nanoTime() - started, computeNs);
        return response;
    }

    private static <T> void answer(StreamObserver<T> reply, T message) {
        reply.onNext(message);
        reply.onCompleted();
    }
}
