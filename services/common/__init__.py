"""What every TinyForge gRPC service shares: server assembly, auth, error mapping, audit."""
