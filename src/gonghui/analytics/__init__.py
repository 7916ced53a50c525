"""Org-wide analytics: scheduled aggregates per (org, month) read over a subtree."""
