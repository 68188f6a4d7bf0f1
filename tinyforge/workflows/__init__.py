"""tinyforge.workflows (see DESIGN.md §1)."""
