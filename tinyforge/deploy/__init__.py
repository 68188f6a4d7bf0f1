"""tinyforge.deploy (see DESIGN.md §1)."""
