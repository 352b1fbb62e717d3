"""A brand's own earlier tweets: read a history dump, retrieve examples for a new post, learn its voice."""
