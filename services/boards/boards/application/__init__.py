"""Boards' use cases: card operations (`cards`) and admins' configuration (`catalog`)."""
