"""gRPC plumbing shared by ingress and egress: the raw-bytes server, forwarding, metadata, status."""
