"""Reusable output products (figures, reports) built from dpp's data, independent of any run."""
