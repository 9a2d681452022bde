"""Event buses: how committed changes reach subscribers, in one process and across them."""
