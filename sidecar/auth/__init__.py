"""Authentication: OAuth2 bearer JWTs verified against a JWKS, and the caller's identity."""
