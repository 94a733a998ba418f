"""Registration of this sidecar's app in a service registry (Eureka), gated on model readiness."""
