// Command authority-client calls the stream backend's test.Streams (tests/support/stream_backend.py)
// through a sidecar's gRPC egress, naming the service only as the channel's authority
// (grpc.WithAuthority): no metadata of the sidecar's. It makes a call of each kind, unary, server-,
// client- and bidi-streaming, checks every answer, and prints one line per kind: KIND OK. Messages
// are raw bytes (a codec of its own), as the backend's are. Exits 1 at the first wrong answer.
//
//	authority-client -addr 127.0.0.1:15001 -authority echo-svc
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type raw struct{}

func (raw) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (raw) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (raw) Name() string { return "proto" } // the content-type grpc-go sends: application/grpc+proto

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	addr := flag.String("addr", "", "the egress listener, HOST:PORT")
	authority := flag.String("authority", "", "the service, as the channel's authority")
	flag.Parse()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(*authority), grpc.WithDefaultCallOptions(grpc.ForceCodec(raw{})))
	if err != nil {
		fail("dial: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var reply []byte
	in := []byte("go")
	if err := conn.Invoke(ctx, "/test.Streams/Unary", &in, &reply); err != nil || string(reply) != "unary:go" {
		fail("unary: %q %v", reply, err)
	}
	fmt.Println("unary OK")

	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}
	s, err := conn.NewStream(ctx, desc, "/test.Streams/ServerStream")
	if err != nil {
		fail("server streaming: %v", err)
	}
	three := []byte("3")
	if err := s.SendMsg(&three); err != nil {
		fail("server streaming send: %v", err)
	}
	s.CloseSend()
	for i := 0; ; i++ {
		var m []byte
		err := s.RecvMsg(&m)
		if err == io.EOF && i == 3 {
			break
		}
		if err != nil || string(m) != fmt.Sprintf("item-%d", i) {
			fail("server streaming %d: %q %v", i, m, err)
		}
	}
	fmt.Println("server_streaming OK")

	s, err = conn.NewStream(ctx, desc, "/test.Streams/ClientStream")
	if err != nil {
		fail("client streaming: %v", err)
	}
	for _, p := range []string{"a", "b", "c"} {
		b := []byte(p)
		if err := s.SendMsg(&b); err != nil {
			fail("client streaming send: %v", err)
		}
	}
	s.CloseSend()
	var joined []byte
	if err := s.RecvMsg(&joined); err != nil || string(joined) != "a|b|c" {
		fail("client streaming: %q %v", joined, err)
	}
	fmt.Println("client_streaming OK")

	s, err = conn.NewStream(ctx, desc, "/test.Streams/Bidi")
	if err != nil {
		fail("bidi: %v", err)
	}
	for _, p := range []string{"x", "y"} { // ping-pong: each answer before the next request
		b := []byte(p)
		if err := s.SendMsg(&b); err != nil {
			fail("bidi send: %v", err)
		}
		var m []byte
		if err := s.RecvMsg(&m); err != nil || string(m) != "echo:"+p {
			fail("bidi: %q %v", m, err)
		}
	}
	s.CloseSend()
	var m []byte
	if err := s.RecvMsg(&m); err != io.EOF {
		fail("bidi end: %v", err)
	}
	fmt.Println("bidi OK")
}
