"""tinyforge.quantize (see DESIGN.md §1)."""
