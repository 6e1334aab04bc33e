"""Scheduled posts (issue 24): a store, an API (``vigil schedule serve``), a publisher
(``vigil schedule publish``) that writes each due post into the raw log exactly once, and the
moderation that checks a post before it goes live. See docs/scheduling.md."""
