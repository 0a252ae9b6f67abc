"""Visitor stitching: attributes an anonymous visitor's events to its account once the
visitor identifies (de-anonymisation), and records visitors for the de-anonymisation rate."""
