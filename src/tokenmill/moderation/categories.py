"""The moderation categories, shared by the lexicon, the semantic classifier and the API."""

CATEGORIES = ("violence", "self_harm", "sexual", "hate", "harassment", "illicit")
