"""tinyforge.compiler (see DESIGN.md §1)."""
