"""Adapters: one per external system (helm, Kubernetes, Prometheus, eksctl, kwokctl, AWS, HTTP load).

Each builds argument lists (never a shell string), checks that its binary exists, sets explicit
timeouts, and wraps the third-party errors in gpu_inference.errors at this boundary.
"""
