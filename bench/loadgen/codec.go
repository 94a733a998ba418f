package main

// A gRPC codec that sends a request already serialised by someone else and only counts the
// response's bytes: no protobuf work per call, so the generator's own CPU stays out of the
// measurement, and Go needs no generated code for the inference contract.

import (
	"fmt"

	"google.golang.org/grpc/mem"
)

// rawCodec marshals a *[]byte as is and unmarshals into an *int (the response's length).
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T, want *[]byte", v)
	}
	// SliceBuffer's Free is a no-op, so gRPC never recycles the shared payload.
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	n, ok := v.(*int)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T, want *int", v)
	}
	*n = data.Len()
	return nil
}

// Name is "proto" so the content-type is application/grpc+proto, as a protobuf client's would be.
func (rawCodec) Name() string { return "proto" }
