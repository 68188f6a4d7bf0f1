"""tinyforge.blocks (see DESIGN.md §1)."""
