"""tinyforge.learn (see DESIGN.md §1)."""
