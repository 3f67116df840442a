"""Cache warming: precompute what the PELBIOT API serves into the Redis keys it reads."""
