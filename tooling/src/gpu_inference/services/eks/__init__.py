"""Everything AWS: the eksctl config model and rules, preflight, deploy, ordered teardown and the
audit that proves nothing billable is left. Every AWS call goes through boto3 clients made by
`gpu_inference.adapters.aws`, so tests run the same code against moto."""
