package ai.sidecar.examples.digits;

import ai.sidecar.inference.InferStatistics;
import ai.sidecar.inference.ModelStatistics;
import ai.sidecar.inference.StatisticDuration;

/** Triton-style cumulative counters for the one model; durations in nanoseconds. Thread-safe. */
final class Statistics {
    private long lastInferenceMs;
    private long inferenceCount;
    private long executionCount;
    private long successCount;
    private long successNs;
    private long computeCount;
    private long computeNs;
    private long failCount;
    private long failNs;

    synchronized void success(int batch, long totalNs, long computeInferNs) {
        lastInferenceMs = System.currentTimeMillis();
        inferenceCount += batch;
        executionCount += 1;
        successCount += 1;
        successNs += totalNs;
        computeCount += 1;
        computeNs += computeInferNs;
    }

    synchronized void failure(long totalNs) {
        lastInferenceMs = System.currentTimeMillis();
        failCount += 1;
        failNs += totalNs;
    }

    synchronized ModelStatistics snapshot() {
        return ModelStatistics.newBuilder()
                .setName(InferCodec.MODEL)
                .setVersion(InferCodec.VERSION)
                .setLastInference(lastInferenceMs)
                .setInferenceCount(inferenceCount)
                .setExecutionCount(executionCount)
                .setInferenceStats(InferStatistics.newBuilder()
                        .setSuccess(duration(successCount, successNs))
                        .setFail(duration(failCount, failNs))
                        .setComputeInfer(duration(computeCount, computeNs)))
                .build();
    }

    private static StatisticDuration duration(long count, long ns) {
        return StatisticDuration.newBuilder().setCount(count).setNs(ns).build();
    }
}
