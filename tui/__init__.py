"""The Textual review application (see issue: TUI)."""
