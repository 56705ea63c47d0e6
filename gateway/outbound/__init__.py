"""Everything that leaves: the SMS outbox and the configured sender, price-alert broadcasts and
their corrections, the daily budgets and the reply ceilings."""
