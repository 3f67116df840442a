"""Index management: the declared indexes, the live schema, duplicates, the plan."""
