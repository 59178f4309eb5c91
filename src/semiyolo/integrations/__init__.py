"""Integrations with detection frameworks; each lives in its own subpackage and uses the core as a library."""
