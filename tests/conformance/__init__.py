"""A black-box conformance kit for OIP v2 endpoints (gRPC and REST); see README.md beside this file."""
