"""The watch-folder service and job runner (see issue: daemon)."""
