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
class GRPCInferenceServiceClient extends \Grpc\BaseStub {

    /**
     * @param string $hostname hostname
     * @param array $opts channel options
     * @param \Grpc\Channel $channel (optional) re-use channel object
     */
    public function __construct($hostname, $opts, $channel = null) {
        parent::__construct($hostname, $opts, $channel);
    }

    /**
     * True if the server can receive and respond to metadata and inference.
     * @param \Inference\ServerLiveRequest $argument input argument
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\UnaryCall
     */
    public function ServerLive(\Inference\ServerLiveRequest $argument,
      $metadata = [], $options = []) {
        return $this->_simpleRequest('/inference.GRPCInferenceService/ServerLive',
        $argument,
        ['\Inference\ServerLiveResponse', 'decode'],
        $metadata, $options);
    }

    /**
     * True if the server is ready for inferencing.
     * @param \Inference\ServerReadyRequest $argument input argument
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\UnaryCall
     */
    public function ServerReady(\Inference\ServerReadyRequest $argument,
      $metadata = [], $options = []) {
        return $this->_simpleRequest('/inference.GRPCInferenceService/ServerReady',
        $argument,
        ['\Inference\ServerReadyResponse', 'decode'],
        $metadata, $options);
    }

    /**
     * True if a specific model is ready for inferencing.
     * @param \Inference\ModelReadyRequest $argument input argument
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\UnaryCall
     */
    public function ModelReady(\Inference\ModelReadyRequest $argument,
      $metadata = [], $options = []) {
        return $this->_simpleRequest('/inference.GRPCInferenceService/ModelReady',
        $argument,
        ['\Inference\ModelReadyResponse', 'decode'],
        $metadata, $options);
    }

    /**
     * Information about the server.
     * @param \Inference\ServerMetadataRequest $argument input argument
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\UnaryCall
     */
    public function ServerMetadata(\Inference\ServerMetadataRequest $argument,
      $metadata = [], $options = []) {
        return $this->_simpleRequest('/inference.GRPCInferenceService/ServerMetadata',
        $argument,
        ['\Inference\ServerMetadataResponse', 'decode'],
        $metadata, $options);
    }

    /**
     * Information about one model.
     * @param \Inference\ModelMetadataRequest $argument input argument
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\UnaryCall
     */
    public function ModelMetadata(\Inference\ModelMetadataRequest $argument,
      $metadata = [], $options = []) {
        return $this->_simpleRequest('/inference.GRPCInferenceService/ModelMetadata',
        $argument,
        ['\Inference\ModelMetadataResponse', 'decode'],
        $metadata, $options);
    }

    /**
     * Inference with one model.
     * @param \Inference\ModelInferRequest $argument input argument
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\UnaryCall
     */
    public function ModelInfer(\Inference\ModelInferRequest $argument,
      $metadata = [], $options = []) {
        return $this->_simpleRequest('/inference.GRPCInferenceService/ModelInfer',
        $argument,
        ['\Inference\ModelInferResponse', 'decode'],
        $metadata, $options);
    }

    /**
     * Triton extension: streaming inference. Optional; a model without it
     * answers UNIMPLEMENTED.
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\BidiStreamingCall
     */
    public function ModelStreamInfer($metadata = [], $options = []) {
        return $this->_bidiRequest('/inference.GRPCInferenceService/ModelStreamInfer',
        ['\Inference\ModelStreamInferResponse','decode'],
        $metadata, $options);
    }

    /**
     * Triton extension: cumulative statistics for a model. Optional.
     * @param \Inference\ModelStatisticsRequest $argument input argument
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\UnaryCall
     */
    public function ModelStatistics(\Inference\ModelStatisticsRequest $argument,
      $metadata = [], $options = []) {
        return $this->_simpleRequest('/inference.GRPCInferenceService/ModelStatistics',
        $argument,
        ['\Inference\ModelStatisticsResponse', 'decode'],
        $metadata, $options);
    }

    /**
     * Triton extension: index of the model repository. Optional.
     * @param \Inference\RepositoryIndexRequest $argument input argument
     * @param array $metadata metadata
     * @param array $options call options
     * @return \Grpc\UnaryCall
     */
    public function RepositoryIndex(\Inference\RepositoryIndexRequest $argument,
      $metadata = [], $options = []) {
        return $this->_simpleRequest('/inference.GRPCInferenceService/RepositoryIndex',
        $argument,
        ['\Inference\RepositoryIndexResponse', 'decode'],
        $metadata, $options);
    }

}
