"""Generated from proto/inference by sdk-stubs/generate.py. Do not edit."""
