package dev.aisidecar.gateway;

import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.cloud.gateway.route.RouteLocator;
import org.springframework.cloud.gateway.route.builder.RouteLocatorBuilder;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * A route for the tests only, off unless {@code gateway.streams-route=true}: gRPC calls to
 * {@code test.Streams} (tests/support/stream_backend.py, every streaming kind and a status after
 * messages) go to {@code lb://streams}. Beside application.yml's routes, which a command-line list
 * would replace whole; ahead of the content-type route to digits, which matches every gRPC call.
 */
@Configuration(proxyBeanMethods = false)
@ConditionalOnProperty("gateway.streams-route")
public class StreamsRoute {

    @Bean
    RouteLocator streams(RouteLocatorBuilder routes) {
        return routes.routes()
                .route("streams-grpc", r -> r.order(-1).path("/test.Streams/**").uri("lb://streams"))
                // The same, for calls with the authority "stock.streams", with Spring Cloud Gateway's
                // own response trailers (GrpcRouting's trailers filter off).
                .route("streams-grpc-stock", r -> r.order(-2).host("stock.streams").and().path("/test.Streams/**")
                        .metadata("grpc-trailers", "stock").uri("lb://streams"))
                .build();
    }
}
