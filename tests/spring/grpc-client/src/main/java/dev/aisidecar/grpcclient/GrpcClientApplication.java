package dev.aisidecar.grpcclient;

import ai.sidecar.inference.GRPCInferenceServiceGrpc;
import ai.sidecar.inference.ModelInferRequest;
import ai.sidecar.inference.ModelInferResponse;
import ai.sidecar.inference.ModelReadyRequest;
import ai.sidecar.inference.ModelStreamInferResponse;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import net.devh.boot.grpc.client.inject.GrpcClient;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.ApplicationRunner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.cloud.client.ServiceInstance;
import org.springframework.cloud.client.discovery.DiscoveryClient;
import org.springframework.context.annotation.Bean;

/**
 * Calls the OIP service named {@code digits} through a {@code @GrpcClient} stub whose channel
 * resolves {@code discovery:///digits}, then exits.
 *
 * <p>Once discovery lists {@code calls.instances} instances it makes {@code calls.count} unary
 * ModelInfer calls with the request in the file {@code calls.request} (a serialized
 * ModelInferRequest), one ModelInfer for a model that does not exist, and one ModelStreamInfer
 * stream of {@code calls.count} requests. It prints one line starting {@code GRPCCLIENT RESULT}
 * with a JSON object of what came back, or {@code GRPCCLIENT FAILED} and why. Knows nothing about
 * the sidecar.
 */
@SpringBootApplication
public class GrpcClientApplication {

    @GrpcClient("digits")
    private GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub blocking;

    @GrpcClient("digits")
    private GRPCInferenceServiceGrpc.GRPCInferenceServiceStub async;

    public static void main(String[] args) {
        System.exit(SpringApplication.exit(SpringApplication.run(GrpcClientApplication.class, args)));
    }

    @Bean
    ApplicationRunner calls(
            DiscoveryClient discovery,
            @Value("${calls.service:digits}") String service,
            @Value("${calls.instances:1}") int instances,
            @Value("${calls.count:6}") int count,
            @Value("${calls.request}") String requestFile) {
        return args -> {
            try {
                run(discovery, service, instances, count, requestFile);
            } catch (StatusRuntimeException e) {
                System.out.println("GRPCCLIENT FAILED " + e.getStatus());
                System.exit(1);
            }
        };
    }

    private void run(DiscoveryClient discovery, String service, int instances, int count, String requestFile)
            throws Exception {
        ModelInferRequest request = ModelInferRequest.parseFrom(Files.readAllBytes(Path.of(requestFile)));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (discovery.getInstances(service).size() < instances) {
            if (System.nanoTime() > deadline) {
                System.out.println("GRPCCLIENT FAILED discovery never listed " + instances + " instances");
                System.exit(1);
            }
            Thread.sleep(100);
        }
        Map<String, Object> result = new LinkedHashMap<>();
        List<Map<String, Object>> seen = new ArrayList<>();
        for (ServiceInstance instance : discovery.getInstances(service)) {
            Map<String, Object> one = new LinkedHashMap<>();
            one.put("host", instance.getHost());
            one.put("port", instance.getPort());
            one.put("gRPC_port", instance.getMetadata().get("gRPC_port"));
            seen.add(one);
        }
        result.put("discovered", seen);
        result.put("ready", blocking.withDeadlineAfter(10, TimeUnit.SECONDS)
                .modelReady(ModelReadyRequest.newBuilder().setName(request.getModelName()).build())
                .getReady());
        List<List<Long>> labels = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            labels.add(labelsOf(blocking.withDeadlineAfter(10, TimeUnit.SECONDS).modelInfer(request)));
        }
        result.put("labels", labels);
        try {
            blocking.withDeadlineAfter(10, TimeUnit.SECONDS)
                    .modelInfer(request.toBuilder().setModelName("no-such-model").build());
            result.put("unknown_model", "OK");
        } catch (StatusRuntimeException e) {
            result.put("unknown_model", e.getStatus().getCode().name() + ": " + e.getStatus().getDescription());
        }
        result.put("stream_labels", stream(request, count));
        System.out.println("GRPCCLIENT RESULT " + new ObjectMapper().writeValueAsString(result));
    }

    private List<List<Long>> stream(ModelInferRequest request, int count) throws Exception {
        List<List<Long>> labels = new ArrayList<>();
        CompletableFuture<Status> done = new CompletableFuture<>();
        StreamObserver<ModelInferRequest> requests = async.withDeadlineAfter(10, TimeUnit.SECONDS)
                .modelStreamInfer(new StreamObserver<ModelStreamInferResponse>() {
                    @Override
                    public void onNext(ModelStreamInferResponse response) {
                        synchronized (labels) {
                            labels.add(labelsOf(response.getInferResponse()));
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        done.complete(Status.fromThrowable(t));
                    }

                    @Override
                    public void onCompleted() {
                        done.complete(Status.OK);
                    }
                });
        for (int i = 0; i < count; i++) {
            requests.onNext(request);
        }
        requests.onCompleted();
        Status status = done.get(15, TimeUnit.SECONDS);
        if (!status.isOk()) {
            throw status.asRuntimeException();
        }
        synchronized (labels) {
            return labels;
        }
    }

    private static List<Long> labelsOf(ModelInferResponse response) {
        for (ModelInferResponse.InferOutputTensor output : response.getOutputsList()) {
            if (output.getName().equals("LABEL")) {
                return output.getContents().getInt64ContentsList();
            }
        }
        throw new IllegalStateException("no LABEL output in " + response);
    }
}
