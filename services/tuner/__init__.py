"""The tuner service: a thin gRPC layer over tinyforge/ (see DESIGN.md §1)."""
