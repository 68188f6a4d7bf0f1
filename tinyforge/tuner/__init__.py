"""tinyforge.tuner (see DESIGN.md §1)."""
