"""Discovery: who serves an app, as immutable snapshots of endpoints, from Eureka or a static file."""
