"""tinyforge.data (see DESIGN.md §1)."""
