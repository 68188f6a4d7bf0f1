"""tinyforge.dsp (see DESIGN.md §1)."""
