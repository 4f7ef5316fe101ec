"""Cost of the stack: versioned prices, estimates from the config, and reports from runs.

API for callers (the CLI, `make demo`):
- gpu_inference.services.cost.estimate.estimate_cost(...) -> CostEstimate
- gpu_inference.services.cost.report.cost_report_from_run(run_dir) -> CostReport
- gpu_inference.services.cost.window.cost_report_from_window(prom, PromWindow(...), ...) -> CostReport
"""
