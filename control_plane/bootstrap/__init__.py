"""Composition root: builds the concrete providers and services from settings, once per process."""
