"""EKS use cases: preflight, deploy, ordered teardown, the audit that proves nothing billable is left.

Every AWS call goes through boto3 clients made by `gpu_inference.adapters.aws`, so tests run the
same code against moto. The eksctl config model itself is `gpu_inference.domain.eksctl_config`.
"""
