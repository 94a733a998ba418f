// Command interopserver serves grpc-go's own interop TestService together with grpc.health.v1, so
// the sidecar (which becomes ready only when its model answers a health Check SERVING) can front
// it as "the model" for the gRPC interop test cases.
//
// grpc-go's interop/server main registers no health service and listens on every interface; this
// one listens on -host (loopback by default), picks a free port with -port 0, and prints
// "interop server listening on HOST:PORT" on stdout once it accepts calls. SIGTERM stops it
// gracefully. The test service itself is grpc-go's (interop.NewTestServer), not a copy.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port to listen on; 0 picks a free one")
	flag.Parse()

	lis, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		log.Fatalf("interopserver: listen: %v", err)
	}
	server := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(server, interop.NewTestServer())
	healthServer := health.NewServer() // answers SERVING for "" from the start
	healthServer.SetServingStatus(testgrpc.TestService_ServiceDesc.ServiceName, healthgrpc.HealthCheckResponse_SERVING)
	healthgrpc.RegisterHealthServer(server, healthServer)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		healthServer.Shutdown()
		server.GracefulStop()
	}()

	fmt.Printf("interop server listening on %s\n", lis.Addr())
	if err := server.Serve(lis); err != nil {
		log.Fatalf("interopserver: serve: %v", err)
	}
}
