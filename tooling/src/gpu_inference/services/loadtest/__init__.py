"""Load runs that prove scale-up: open-loop or locust load, a timeline sampler, calibration, the verdict.

The API the CLI and `make demo` use lives in gpu_inference.services.loadtest.runner:
run_loadtest(options) and run_verify_scaleup(options), both returning a RunReport. Kept import-light:
locust subprocesses import gpu_inference.adapters.locust_support, which must not pull in this package.
"""
