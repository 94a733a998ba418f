package ai.sidecar.examples.digits;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import sun.misc.Signal;

/**
 * The process: parse flags, load the weights, serve OIP v2 and grpc.health.v1 until SIGTERM or
 * SIGINT, then drain (NOT_SERVING, stop accepting, let in-flight calls finish) and exit 0.
 *
 * <pre>java -jar examples/java/target/digits-java.jar --host 127.0.0.1 --port 0</pre>
 */
public final class DigitsServer {
    private static final String SERVICE = "inference.GRPCInferenceService";
    private static final String USAGE = String.join("\n",
            "usage: java -jar digits-java.jar [--host HOST] [--port PORT] [--weights PATH] [--grace SECONDS]",
            "",
            "OIP v2 gRPC server for the digits model.",
            "",
            "  --host HOST      address to listen on (default 127.0.0.1)",
            "  --port PORT      port; 0 picks a free one (default 8001)",
            "  --weights PATH   weights.json (default examples/digits/weights.json beside this jar's",
            "                   examples/java/target/)",
            "  --grace SECONDS  how long in-flight calls may finish on shutdown (default 5)");
    // The sidecar's default max_message_bytes, so a batch it accepts is never refused here.
    private static final int MAX_MESSAGE_BYTES = 64 << 20;

    record Options(String host, int port, Path weights, double grace) {}

    /** A command line this program refuses; the message says which flag and why. */
    static final class UsageError extends Exception {
        private static final long serialVersionUID = 1L;

        UsageError(String message) {
            super(message);
        }
    }

    private DigitsServer() {}

    public static void main(String[] args) throws InterruptedException {
        System.exit(run(args));
    }

    static int run(String[] args) throws InterruptedException {
        Options options;
        try {
            options = parse(args);
        } catch (UsageError error) {
            System.err.println(USAGE);
            System.err.println("digits-java: error: " + error.getMessage());
            return 2;
        }
        if (options == null) {
            System.out.println(USAGE);
            return 0;
        }
        DigitsModel model;
        try {
            model = DigitsModel.load(options.weights());
        } catch (DigitsModel.BadWeights error) {
            System.err.println(error.getMessage());
            return 1;
        }
        return serve(model, options);
    }

    private static int serve(DigitsModel model, Options options) throws InterruptedException {
        DigitsService service = new DigitsService(model);
        HealthStatusManager health = new HealthStatusManager();
        health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
        health.setStatus(SERVICE, ServingStatus.SERVING);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress(options.host(), options.port()))
                .addService(service)
                .addService(health.getHealthService())
                .maxInboundMessageSize(MAX_MESSAGE_BYTES)
                .build();

        // Handled rather than left to shutdown hooks: after a hook the JVM exits 143, and a
        // graceful stop is a success.
        CountDownLatch stop = new CountDownLatch(1);
        Signal.handle(new Signal("TERM"), signal -> stop.countDown());
        Signal.handle(new Signal("INT"), signal -> stop.countDown());

        String address = address(options.host(), options.port());
        try {
            server.start();
        } catch (IOException error) {
            String cause = error.getCause() != null ? error.getCause().getMessage() : error.getMessage();
            System.err.println("digits model: cannot listen on " + address + ": " + cause);
            return 1;
        }
        System.out.println("digits model listening on " + address(options.host(), server.getPort()));
        System.out.flush();
        stop.await();

        service.drain();
        health.enterTerminalState();
        server.shutdown();
        long graceNanos = (long) (options.grace() * 1e9);
        if (!server.awaitTermination(graceNanos, TimeUnit.NANOSECONDS)) {
            server.shutdownNow();
            server.awaitTermination(5, TimeUnit.SECONDS);
        }
        return 0;
    }

    /** The options, or null when --help asked for the usage text. */
    static Options parse(String[] args) throws UsageError {
        String host = "127.0.0.1";
        int port = 8001;
        Path weights = defaultWeights();
        double grace = 5.0;
        for (int i = 0; i < args.length; i++) {
            String flag = args[i];
            String value = null;
            int equals = flag.indexOf('=');
            if (flag.startsWith("--") && equals > 0) {
                value = flag.substring(equals + 1);
                flag = flag.substring(0, equals);
            }
            if (flag.equals("--help") || flag.equals("-h")) {
                return null;
            }
            if (!flag.equals("--host") && !flag.equals("--port") && !flag.equals("--weights")
                    && !flag.equals("--grace")) {
                throw new UsageError("unrecognized argument: " + args[i]);
            }
            if (value == null) {
                if (i + 1 >= args.length) {
                    throw new UsageError("argument " + flag + ": expected one argument");
                }
                value = args[++i];
            }
            switch (flag) {
                case "--host" -> host = value;
                case "--port" -> port = integer(flag, value, 0, 65535);
                case "--weights" -> weights = Path.of(value);
                default -> grace = seconds(flag, value);
            }
        }
        if (weights == null) {
            throw new UsageError("--weights is required when the jar is not in examples/java/target/");
        }
        return new Options(host, port, weights, grace);
    }

    private static int integer(String flag, String value, int low, int high) throws UsageError {
        try {
            int parsed = Integer.parseInt(value);
            if (parsed >= low && parsed <= high) {
                return parsed;
            }
        } catch (NumberFormatException ignored) {
            // reported below, with the range
        }
        throw new UsageError(
                "argument " + flag + ": '" + value + "' is not an integer in " + low + ".." + high);
    }

    private static double seconds(String flag, String value) throws UsageError {
        try {
            double parsed = Double.parseDouble(value);
            if (parsed >= 0 && Double.isFinite(parsed)) {
                return parsed;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new UsageError("argument " + flag + ": '" + value + "' is not a number of seconds >= 0");
    }

    /** examples/digits/weights.json, found from the jar at examples/java/target/digits-java.jar. */
    private static Path defaultWeights() {
        CodeSource source = DigitsServer.class.getProtectionDomain().getCodeSource();
        if (source == null) {
            return null;
        }
        Path jar;
        try {
            jar = Path.of(source.getLocation().toURI()).toAbsolutePath();
        } catch (URISyntaxException | IllegalArgumentException error) {
            return null;
        }
        Path examples = jar.getParent() == null ? null : jar.getParent().getParent();
        examples = examples == null ? null : examples.getParent();
        return examples == null ? null : examples.resolve("digits").resolve("weights.json");
    }

    private static String address(String host, int port) {
        return host.contains(":") ? "[" + host + "]:" + port : host + ":" + port;
    }
}
