"""Health score, alert rules, incidents and notifications."""
