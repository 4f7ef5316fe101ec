"""Cost of the stack: versioned prices, estimates from the config, and reports from runs.

API for callers (the CLI, `make demo`):
- gpu_inference.cost.estimate.estimate_cost(...) -> CostEstimate
- gpu_inference.cost.report.cost_report_from_run(run_dir) -> CostReport
- gpu_inference.cost.report.cost_report_from_window(...) -> CostReport
"""
