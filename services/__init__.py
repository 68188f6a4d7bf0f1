"""gRPC services of TinyForge: thin layers over the tinyforge library."""
