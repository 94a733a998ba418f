// Calls the stream backend's test.Streams (tests/support/stream_backend.py) through a sidecar's gRPC
// egress with grpc-java, naming the service only as the channel's authority (overrideAuthority): no
// metadata of the sidecar's. One call of each kind, unary, server-, client- and bidi-streaming, each
// answer checked; prints one line per kind: KIND OK, and exits 1 at the first wrong answer. Messages
// are raw bytes (a marshaller of its own), as the backend's are.
// Run as a single source file on a classpath with grpc-java (examples/java's fat jar):
//   java -cp examples/java/target/digits-java.jar AuthorityClient.java HOST PORT AUTHORITY

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.MethodDescriptor;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

public final class AuthorityClient {
    private AuthorityClient() {}

    static final MethodDescriptor.Marshaller<byte[]> RAW = new MethodDescriptor.Marshaller<>() {
        @Override public InputStream stream(byte[] value) { return new ByteArrayInputStream(value); }
        @Override public byte[] parse(InputStream in) {
            try { return in.readAllBytes(); } catch (IOException e) { throw new UncheckedIOException(e); }
        }
    };

    static MethodDescriptor<byte[], byte[]> method(String name, MethodDescriptor.MethodType type) {
        return MethodDescriptor.<byte[], byte[]>newBuilder().setType(type)
                .setFullMethodName("test.Streams/" + name).setRequestMarshaller(RAW).setResponseMarshaller(RAW)
                .build();
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }
    static String s(byte[] b) { return new String(b, StandardCharsets.UTF_8); }

    static void check(String kind, Object got, Object want) {
        if (!got.equals(want)) {
            System.err.println(kind + ": got " + got + ", want " + want);
            System.exit(1);
        }
        System.out.println(kind + " OK");
    }

    public static void main(String[] args) throws Exception {
        ManagedChannel channel = ManagedChannelBuilder.forAddress(args[0], Integer.parseInt(args[1]))
                .overrideAuthority(args[2]).usePlaintext().build();
        CallOptions options = CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS);
        try {
            check("unary", s(ClientCalls.blockingUnaryCall(channel, method("Unary",
                    MethodDescriptor.MethodType.UNARY), options, b("java"))), "unary:java");

            List<String> items = new ArrayList<>();
            Iterator<byte[]> it = ClientCalls.blockingServerStreamingCall(channel, method("ServerStream",
                    MethodDescriptor.MethodType.SERVER_STREAMING), options, b("3"));
            it.forEachRemaining(m -> items.add(s(m)));
            check("server_streaming", items, List.of("item-0", "item-1", "item-2"));

            LinkedBlockingQueue<Object> got = new LinkedBlockingQueue<>();
            StreamObserver<byte[]> answers = new StreamObserver<>() {
                @Override public void onNext(byte[] m) { got.add(s(m)); }
                @Override public void onError(Throwable t) { got.add(t); }
                @Override public void onCompleted() { got.add("END"); }
            };
            StreamObserver<byte[]> requests = ClientCalls.asyncClientStreamingCall(channel.newCall(
                    method("ClientStream", MethodDescriptor.MethodType.CLIENT_STREAMING), options), answers);
            for (String p : List.of("a", "b", "c")) requests.onNext(b(p));
            requests.onCompleted();
            check("client_streaming", List.of(got.poll(20, TimeUnit.SECONDS), got.poll(20, TimeUnit.SECONDS)),
                    List.of("a|b|c", "END"));

            requests = ClientCalls.asyncBidiStreamingCall(channel.newCall(
                    method("Bidi", MethodDescriptor.MethodType.BIDI_STREAMING), options), answers);
            List<Object> echoed = new ArrayList<>();
            for (String p : List.of("x", "y")) {  // ping-pong: each answer before the next request
                requests.onNext(b(p));
                echoed.add(got.poll(20, TimeUnit.SECONDS));
            }
            requests.onCompleted();
            echoed.add(got.poll(20, TimeUnit.SECONDS));
            check("bidi", echoed, List.of("echo:x", "echo:y", "END"));
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }
}
