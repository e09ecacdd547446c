"""Blameless reviews: built in the post-mortems issue (step 4)."""
