package dev.aisidecar.gateway;

import java.net.URI;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.cloud.client.ServiceInstance;
import org.springframework.cloud.client.loadbalancer.Response;
import org.springframework.cloud.gateway.config.HttpClientProperties;
import org.springframework.cloud.gateway.filter.GatewayFilterChain;
import org.springframework.cloud.gateway.filter.GlobalFilter;
import org.springframework.cloud.gateway.filter.NettyRoutingFilter;
import org.springframework.cloud.gateway.filter.ReactiveLoadBalancerClientFilter;
import org.springframework.cloud.gateway.filter.headers.HttpHeadersFilter;
import org.springframework.cloud.gateway.route.Route;
import org.springframework.cloud.gateway.support.ServerWebExchangeUtils;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.Ordered;
import org.springframework.http.HttpHeaders;
import org.springframework.http.server.reactive.AbstractServerHttpResponse;
import org.springframework.http.server.reactive.ServerHttpResponse;
import org.springframework.http.server.reactive.ServerHttpResponseDecorator;
import org.springframework.util.StringUtils;
import org.springframework.web.server.ServerWebExchange;
import org.springframework.web.util.UriComponentsBuilder;
import reactor.core.publisher.Mono;
import reactor.netty.http.HttpProtocol;
import reactor.netty.http.client.HttpClient;
import reactor.netty.http.client.HttpClientResponse;
import reactor.netty.http.server.HttpServerResponse;
import reactor.netty.resources.ConnectionProvider;

/**
 * What Spring Cloud Gateway 4.3 lacks to proxy gRPC to a sidecar-registered instance over plaintext.
 *
 * <p>Three gaps, one filter each:
 * <ul>
 *   <li>An lb:// route resolves to the instance's Eureka {@code port}, which for a sidecar is its
 *       HTTP ingress. {@link #grpcPort()} moves a gRPC call (content type application/grpc) to the
 *       port in the instance's {@code gRPC_port} metadata, the key Spring's gRPC client starter
 *       reads, right after the load balancer chose the instance.</li>
 *   <li>The gateway's HTTP client offers HTTP/2 only over TLS (HTTP/1.1 and H2 when
 *       server.http2.enabled), so to a plaintext upstream a gRPC call would go as HTTP/1.1.
 *       {@link #grpcOverH2c} routes gRPC calls with a second routing filter whose client speaks
 *       h2c with prior knowledge, just before the stock one, which then skips them as already
 *       routed. REST calls keep the stock client and HTTP/1.1.</li>
 *   <li>The gateway's own GRPCResponseHeadersFilter writes the response trailers from the upstream's
 *       <em>headers</em>: grpc-status and grpc-message only, "0" when the headers have none. So a
 *       status the upstream sends in its trailers, after messages (a stream that fails midway),
 *       reaches the client as OK, and trailing metadata is lost. {@link #grpcTrailers()} sends the
 *       upstream's trailers instead, all of them. A route whose metadata has
 *       {@code grpc-trailers: stock} keeps the stock behaviour (the tests show it).</li>
 * </ul>
 */
@Configuration(proxyBeanMethods = false)
public class GrpcRouting {

    static final String GRPC_PORT_KEY = "gRPC_port";

    @Bean
    GlobalFilter grpcPort() {
        return new OrderedFilter(ReactiveLoadBalancerClientFilter.LOAD_BALANCER_CLIENT_FILTER_ORDER + 1) {
            @Override
            public Mono<Void> filter(ServerWebExchange exchange, GatewayFilterChain chain) {
                Response<ServiceInstance> chosen =
                        exchange.getAttribute(ServerWebExchangeUtils.GATEWAY_LOADBALANCER_RESPONSE_ATTR);
                URI url = exchange.getAttribute(ServerWebExchangeUtils.GATEWAY_REQUEST_URL_ATTR);
                if (isGrpc(exchange) && chosen != null && chosen.hasServer() && url != null) {
                    String port = chosen.getServer().getMetadata().get(GRPC_PORT_KEY);
                    if (StringUtils.hasText(port)) {
                        URI moved = UriComponentsBuilder.fromUri(url).port(port).build(true).toUri();
                        exchange.getAttributes().put(ServerWebExchangeUtils.GATEWAY_REQUEST_URL_ATTR, moved);
                    }
                }
                return chain.filter(exchange);
            }
        };
    }

    @Bean
    GlobalFilter grpcOverH2c(ObjectProvider<List<HttpHeadersFilter>> headersFilters, HttpClientProperties properties) {
        HttpClient h2c = HttpClient.create(ConnectionProvider.create("grpc-h2c")).protocol(HttpProtocol.H2C);
        NettyRoutingFilter routing = new NettyRoutingFilter(h2c, headersFilters, properties);
        return new OrderedFilter(NettyRoutingFilter.ORDER - 1) {
            @Override
            public Mono<Void> filter(ServerWebExchange exchange, GatewayFilterChain chain) {
                return isGrpc(exchange) ? routing.filter(exchange, chain) : chain.filter(exchange);
            }
        };
    }

    @Bean
    HttpHeadersFilter grpcTrailers() {
        return new GrpcTrailersFilter();
    }

    /** After GRPCResponseHeadersFilter (order 0), so its trailer consumer is the one replaced. */
    static final class GrpcTrailersFilter implements HttpHeadersFilter, Ordered {

        @Override
        public HttpHeaders filter(HttpHeaders upstreamHeaders, ServerWebExchange exchange) {
            HttpClientResponse upstream = exchange.getAttribute(ServerWebExchangeUtils.CLIENT_RESPONSE_ATTR);
            Route route = exchange.getAttribute(ServerWebExchangeUtils.GATEWAY_ROUTE_ATTR);
            boolean stock = route != null && "stock".equals(route.getMetadata().get("grpc-trailers"));
            ServerHttpResponse response = exchange.getResponse();
            while (response instanceof ServerHttpResponseDecorator decorator) {
                response = decorator.getDelegate();
            }
            if (!isGrpc(exchange) || upstream == null || stock
                    || !(response instanceof AbstractServerHttpResponse server)) {
                return upstreamHeaders;
            }
            // Reactor Netty emits the upstream's trailers before it completes the body, and the server
            // asks for its own trailers after the body: by then they are here.
            AtomicReference<io.netty.handler.codec.http.HttpHeaders> trailers = new AtomicReference<>();
            upstream.trailerHeaders().subscribe(trailers::set);
            String status = upstreamHeaders.getFirst("grpc-status");
            String message = upstreamHeaders.getFirst("grpc-message");
            ((HttpServerResponse) server.getNativeResponse()).trailerHeaders(out -> {
                io.netty.handler.codec.http.HttpHeaders got = trailers.get();
                if (got != null && got.contains("grpc-status")) {
                    got.forEach(entry -> out.add(entry.getKey(), entry.getValue()));
                } else if (status != null) {
                    // Trailers-Only: the status came in the headers, which went to the client already.
                    out.set("grpc-status", status);
                    if (message != null) {
                        out.set("grpc-message", message);
                    }
                } else {
                    out.set("grpc-status", "13"); // INTERNAL, as a gRPC client reads a missing status
                    out.set("grpc-message", "gateway: the upstream response ended without a grpc-status");
                }
            });
            return upstreamHeaders;
        }

        @Override
        public boolean supports(Type type) {
            return Type.RESPONSE.equals(type);
        }

        @Override
        public int getOrder() {
            return 1;
        }
    }

    static boolean isGrpc(ServerWebExchange exchange) {
        String type = exchange.getRequest().getHeaders().getFirst(HttpHeaders.CONTENT_TYPE);
        return type != null && type.regionMatches(true, 0, "application/grpc", 0, "application/grpc".length());
    }

    abstract static class OrderedFilter implements GlobalFilter, Ordered {
        private final int order;

        OrderedFilter(int order) {
            this.order = order;
        }

        @Override
        public int getOrder() {
            return order;
        }
    }
}
