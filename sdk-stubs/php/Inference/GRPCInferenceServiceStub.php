<?php
// GENERATED CODE -- DO NOT EDIT!

// Original file comments:
// The KServe Open Inference Protocol v2 gRPC contract, plus the optional
// Triton extensions ai-sidecar passes through (ModelStreamInfer,
// ModelStatistics, RepositoryIndex).
//
// Written from the specification, field for field, so Triton, KServe and
// MLServer clients and servers interoperate with ai-sidecar unchanged:
//   - KServe docs/predict-api/v2/grpc_predict_v2.proto
//     at commit f79adf9d37f73f89703d946e176c1ab4a5c62af4
//   - Triton common protobuf/grpc_service.proto
//     at commit 02b8e9f35883ae20526b51d588cbd6787021591b
//     (ModelStreamInfer, ModelStatistics, RepositoryIndex; InferParameter's
//     double_param and uint64_param; InferStatistics' cache fields)
//
// Versioning rule: add fields and RPCs only, never renumber or retype one.
// A breaking change goes to a new package.
//
namespace Inference;

/**
 */
class GRPCInferenceServiceStub {

    /**
     * True if the server can receive and respond to metadata and inference.
     * @param \Inference\ServerLiveRequest $request client request
     * @param \Grpc\ServerContext $context server request context
     * @return \Inference\ServerLiveResponse for response data, null if if error occured
     *     initial metadata (if any) and status (if not ok) should be set to $context
     */
    public function ServerLive(
        \Inference\ServerLiveRequest $request,
        \Grpc\ServerContext $context
    ): ?\Inference\ServerLiveResponse {
        $context->setStatus(\Grpc\Status::unimplemented());
        return null;
    }

    /**
     * True if the server is ready for inferencing.
     * @param \Inference\ServerReadyRequest $request client request
     * @param \Grpc\ServerContext $context server request context
     * @return \Inference\ServerReadyResponse for response data, null if if error occured
     *     initial metadata (if any) and status (if not ok) should be set to $context
     */
    public function ServerReady(
        \Inference\ServerReadyRequest $request,
        \Grpc\ServerContext $context
    ): ?\Inference\ServerReadyResponse {
        $context->setStatus(\Grpc\Status::unimplemented());
        return null;
    }

    /**
     * True if a specific model is ready for inferencing.
     * @param \Inference\ModelReadyRequest $request client request
     * @param \Grpc\ServerContext $context server request context
     * @return \Inference\ModelReadyResponse for response data, null if if error occured
     *     initial metadata (if any) and status (if not ok) should be set to $context
     */
    public function ModelReady(
        \Inference\ModelReadyRequest $request,
        \Grpc\ServerContext $context
    ): ?\Inference\ModelReadyResponse {
        $context->setStatus(\Grpc\Status::unimplemented());
        return null;
    }

    /**
     * Information about the server.
     * @param \Inference\ServerMetadataRequest $request client request
     * @param \Grpc\ServerContext $context server request context
     * @return \Inference\ServerMetadataResponse for response data, null if if error occured
     *     initial metadata (if any) and status (if not ok) should be set to $context
     */
    public function ServerMetadata(
        \Inference\ServerMetadataRequest $request,
        \Grpc\ServerContext $context
    ): ?\Inference\ServerMetadataResponse {
        $context->setStatus(\Grpc\Status::unimplemented());
        return null;
    }

    /**
     * Information about one model.
     * @param \Inference\ModelMetadataRequest $request client request
     * @param \Grpc\ServerContext $context server request context
     * @return \Inference\ModelMetadataResponse for response data, null if if error occured
     *     initial metadata (if any) and status (if not ok) should be set to $context
     */
    public function ModelMetadata(
        \Inference\ModelMetadataRequest $request,
        \Grpc\ServerContext $context
    ): ?\Inference\ModelMetadataResponse {
        $context->setStatus(\Grpc\Status::unimplemented());
        return null;
    }

    /**
     * Inference with one model.
     * @param \Inference\ModelInferRequest $request client request
     * @param \Grpc\ServerContext $context server request context
     * @return \Inference\ModelInferResponse for response data, null if if error occured
     *     initial metadata (if any) and status (if not ok) should be set to $context
     */
    public function ModelInfer(
        \Inference\ModelInferRequest $request,
        \Grpc\ServerContext $context
    ): ?\Inference\ModelInferResponse {
        $context->setStatus(\Grpc\Status::unimplemented());
        return null;
    }

    /**
     * Triton extension: streaming inference. Optional; a model without it
     * answers UNIMPLEMENTED.
     * @param \Grpc\ServerCallReader $reader read client request data of \Inference\ModelInferRequest
     * @param \Grpc\ServerCallWriter $writer write response data of \Inference\ModelStreamInferResponse
     * @param \Grpc\ServerContext $context server request context
     * @return void
     */
    public function ModelStreamInfer(
        \Grpc\ServerCallReader $reader,
        \Grpc\ServerCallWriter $writer,
        \Grpc\ServerContext $context
    ): void {
        $context->setStatus(\Grpc\Status::unimplemented());
        $writer->finish();
    }

    /**
     * Triton extension: cumulative statistics for a model. Optional.
     * @param \Inference\ModelStatisticsRequest $request client request
     * @param \Grpc\ServerContext $context server request context
     * @return \Inference\ModelStatisticsResponse for response data, null if if error occured
     *     initial metadata (if any) and status (if not ok) should be set to $context
     */
    public function ModelStatistics(
        \Inference\ModelStatisticsRequest $request,
        \Grpc\ServerContext $context
    ): ?\Inference\ModelStatisticsResponse {
        $context->setStatus(\Grpc\Status::unimplemented());
        return null;
    }

    /**
     * Triton extension: index of the model repository. Optional.
     * @param \Inference\RepositoryIndexRequest $request client request
     * @param \Grpc\ServerContext $context server request context
     * @return \Inference\RepositoryIndexResponse for response data, null if if error occured
     *     initial metadata (if any) and status (if not ok) should be set to $context
     */
    public function RepositoryIndex(
        \Inference\RepositoryIndexRequest $request,
        \Grpc\ServerContext $context
    ): ?\Inference\RepositoryIndexResponse {
        $context->setStatus(\Grpc\Status::unimplemented());
        return null;
    }

    /**
     * Get the method descriptors of the service for server registration
     *
     * @return array of \Grpc\MethodDescriptor for the service methods
     */
    public final function getMethodDescriptors(): array
    {
        return [
            '/inference.GRPCInferenceService/ServerLive' => new \Grpc\MethodDescriptor(
                $this,
                'ServerLive',
                '\Inference\ServerLiveRequest',
                \Grpc\MethodDescriptor::UNARY_CALL
            ),
            '/inference.GRPCInferenceService/ServerReady' => new \Grpc\MethodDescriptor(
                $this,
                'ServerReady',
                '\Inference\ServerReadyRequest',
                \Grpc\MethodDescriptor::UNARY_CALL
            ),
            '/inference.GRPCInferenceService/ModelReady' => new \Grpc\MethodDescriptor(
                $this,
                'ModelReady',
                '\Inference\ModelReadyRequest',
                \Grpc\MethodDescriptor::UNARY_CALL
            ),
            '/inference.GRPCInferenceService/ServerMetadata' => new \Grpc\MethodDescriptor(
                $this,
                'ServerMetadata',
                '\Inference\ServerMetadataRequest',
                \Grpc\MethodDescriptor::UNARY_CALL
            ),
            '/inference.GRPCInferenceService/ModelMetadata' => new \Grpc\MethodDescriptor(
                $this,
                'ModelMetadata',
                '\Inference\ModelMetadataRequest',
                \Grpc\MethodDescriptor::UNARY_CALL
            ),
            '/inference.GRPCInferenceService/ModelInfer' => new \Grpc\MethodDescriptor(
                $this,
                'ModelInfer',
                '\Inference\ModelInferRequest',
                \Grpc\MethodDescriptor::UNARY_CALL
            ),
            '/inference.GRPCInferenceService/ModelStreamInfer' => new \Grpc\MethodDescriptor(
                $this,
                'ModelStreamInfer',
                '\Inference\ModelInferRequest',
                \Grpc\MethodDescriptor::BIDI_STREAMING_CALL
            ),
            '/inference.GRPCInferenceService/ModelStatistics' => new \Grpc\MethodDescriptor(
                $this,
                'ModelStatistics',
                '\Inference\ModelStatisticsRequest',
                \Grpc\MethodDescriptor::UNARY_CALL
            ),
            '/inference.GRPCInferenceService/RepositoryIndex' => new \Grpc\MethodDescriptor(
                $this,
                'RepositoryIndex',
                '\Inference\RepositoryIndexRequest',
                \Grpc\MethodDescriptor::UNARY_CALL
            ),
        ];
    }

}
