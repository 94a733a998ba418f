// Calls URLs through the JVM's proxy settings (-Dhttp.proxyHost, -Dhttp.proxyPort), as a Feign or
// RestTemplate client configured that way does: with HttpURLConnection (what Feign's default client
// and SimpleClientHttpRequestFactory use) and with java.net.http.HttpClient asked for the default
// ProxySelector (which reads the same properties). Arguments come in threes, METHOD URL BODY ("" for
// none, else a JSON body); each call prints one line: CLIENT STATUS BODY. Knows nothing about the sidecar.
// Run as a single source file: java -Dhttp.proxyHost=H -Dhttp.proxyPort=P ProxyClient.java ...

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

public final class ProxyClient {
    private ProxyClient() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 0 || args.length % 3 != 0) {
            System.err.println("usage: ProxyClient METHOD URL BODY [METHOD URL BODY ...]");
            System.exit(2);
        }
        HttpClient client = HttpClient.newBuilder()
                .proxy(ProxySelector.getDefault())
                .connectTimeout(Duration.ofSeconds(5))
                .build();
        for (int i = 0; i < args.length; i += 3) {
            String method = args[i];
            String url = args[i + 1];
            String body = args[i + 2];
            viaUrlConnection(method, url, body);
            viaHttpClient(client, method, url, body);
        }
    }

    private static void viaUrlConnection(String method, String url, String body) throws IOException {
        HttpURLConnection conn = (HttpURLConnection) URI.create(url).toURL().openConnection();
        conn.setRequestMethod(method);
        conn.setConnectTimeout(5000);
        conn.setReadTimeout(10000);
        if (!body.isEmpty()) {
            conn.setDoOutput(true);
            conn.setRequestProperty("Content-Type", "application/json");
            try (OutputStream out = conn.getOutputStream()) {
                out.write(body.getBytes(StandardCharsets.UTF_8));
            }
        }
        int status = conn.getResponseCode();
        InputStream in = status >= 400 ? conn.getErrorStream() : conn.getInputStream();
        String text = in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8);
        print("HttpURLConnection", status, text);
    }

    private static void viaHttpClient(HttpClient client, String method, String url, String body)
            throws IOException, InterruptedException {
        HttpRequest.BodyPublisher publisher = body.isEmpty()
                ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString(body);
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10))
                .method(method, publisher);
        if (!body.isEmpty()) {
            request.header("Content-Type", "application/json");
        }
        HttpResponse<String> response = client.send(request.build(), HttpResponse.BodyHandlers.ofString());
        print("HttpClient", response.statusCode(), response.body());
    }

    private static void print(String client, int status, String body) {
        System.out.println(client + " " + status + " " + body.replace('\n', ' '));
    }
}
