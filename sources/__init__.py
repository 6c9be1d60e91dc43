"""Event sources: one subpackage per source kind."""
