package dev.aisidecar.lbclient;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.ApplicationRunner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.cloud.client.discovery.DiscoveryClient;
import org.springframework.cloud.client.loadbalancer.LoadBalanced;
import org.springframework.context.annotation.Bean;
import org.springframework.http.MediaType;
import org.springframework.http.client.JdkClientHttpRequestFactory;
import org.springframework.web.client.RestClient;

/**
 * Calls a service by name through a {@code @LoadBalanced} RestClient at a fixed rate (open loop:
 * each call starts on time whatever the earlier ones do) and counts what each call ended with.
 *
 * <p>Writes lines starting with {@code LBCLIENT} on stdout: {@code READY} once discovery lists
 * {@code lb.instances} instances, a JSON line of running totals every second, and {@code DONE}
 * with the final totals after stdin closes, which is how the driving test stops it.
 */
@SpringBootApplication
public class LbClientApplication {

    private static final String INFER_BODY = inferBody();

    private final AtomicLong ok = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final Map<String, AtomicLong> errors = new ConcurrentHashMap<>();
    private final ObjectMapper json = new ObjectMapper();

    public static void main(String[] args) {
        SpringApplication.run(LbClientApplication.class, args);
    }

    @Bean
    @LoadBalanced
    RestClient.Builder loadBalancedRestClient() {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        JdkClientHttpRequestFactory factory = new JdkClientHttpRequestFactory(http);
        factory.setReadTimeout(Duration.ofSeconds(5));
        return RestClient.builder().requestFactory(factory);
    }

    @Bean
    ApplicationRunner load(
            RestClient.Builder builder,
            DiscoveryClient discovery,
            @Value("${lb.service:digits-svc}") String service,
            @Value("${lb.rate:50}") double rate,
            @Value("${lb.instances:1}") int instances,
            @Value("${lb.path:/v2/models/digits/infer}") String path) {
        return args -> {
            RestClient client = builder.build();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (discovery.getInstances(service).size() < instances) {
                if (System.nanoTime() > deadline) {
                    System.out.println("LBCLIENT FAILED discovery never listed " + instances + " instances");
                    System.exit(1);
                }
                Thread.sleep(100);
            }
            System.out.println("LBCLIENT READY " + discovery.getInstances(service).size());
            ExecutorService workers = Executors.newFixedThreadPool(64);
            ScheduledExecutorService ticker = Executors.newScheduledThreadPool(1);
            String url = "http://" + service + path;
            ticker.scheduleAtFixedRate(
                    () -> workers.submit(() -> call(client, url)),
                    0, (long) (1e9 / rate), TimeUnit.NANOSECONDS);
            ticker.scheduleAtFixedRate(() -> report("TOTALS"), 1, 1, TimeUnit.SECONDS);
            waitForStdinToClose(System.in);
            ticker.shutdownNow();
            workers.shutdown();
            workers.awaitTermination(10, TimeUnit.SECONDS);
            report("DONE");
            System.exit(0);
        };
    }

    private void call(RestClient client, String url) {
        try {
            client.post().uri(url).contentType(MediaType.APPLICATION_JSON).body(INFER_BODY)
                    .retrieve().toBodilessEntity();
            ok.incrementAndGet();
        } catch (RuntimeException e) {
            failed.incrementAndGet();
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            String why = e.getClass().getSimpleName() + " / " + root.getClass().getSimpleName() + ": "
                    + String.valueOf(root.getMessage());
            errors.computeIfAbsent(why.length() > 200 ? why.substring(0, 200) : why, k -> new AtomicLong())
                    .incrementAndGet();
        }
    }

    private synchronized void report(String what) {
        Map<String, Object> totals = new LinkedHashMap<>();
        totals.put("ok", ok.get());
        totals.put("failed", failed.get());
        Map<String, Long> byError = new TreeMap<>();
        errors.forEach((k, v) -> byError.put(k, v.get()));
        totals.put("errors", byError);
        try {
            System.out.println("LBCLIENT " + what + " " + json.writeValueAsString(totals));
        } catch (IOException e) {
            System.out.println("LBCLIENT " + what + " " + totals);
        }
        System.out.flush();
    }

    private static void waitForStdinToClose(InputStream in) throws IOException {
        byte[] buf = new byte[256];
        while (in.read(buf) >= 0) {
            // Anything written is ignored; only the end of input matters.
        }
    }

    private static String inferBody() {
        StringBuilder data = new StringBuilder();
        for (int i = 0; i < 64; i++) {
            data.append(i == 0 ? "" : ",").append("0.0");
        }
        return "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,64],\"data\":["
                + data + "]}]}";
    }
}
