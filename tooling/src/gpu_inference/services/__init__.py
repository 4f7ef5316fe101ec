"""Services: use cases (EKS deploy/destroy, local cluster, load runs, cost) built on domain + adapters."""
