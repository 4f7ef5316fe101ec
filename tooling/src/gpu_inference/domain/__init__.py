"""Domain: pure models and rules (cluster spec, timeline, verdict, prices, cost items); no I/O."""
