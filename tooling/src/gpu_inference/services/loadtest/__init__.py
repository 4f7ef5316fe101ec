"""Load tests that prove scale-up: locust runs, a timeline sampler, verdict rules and reports.

Kept import-light on purpose: locust subprocesses import gpu_inference.adapters.locust_support,
and that must not pull in the Kubernetes client or matplotlib.

The API the CLI and `make demo` use lives in gpu_inference.services.loadtest.runner:
run_loadtest(options) and run_verify_scaleup(options), both returning a RunReport.
"""
