"""Trading: instruments, order books matched by price-time priority, and their events."""
