"""The autoscaling benchmark on the local cluster (`gpu-inference bench`)."""
