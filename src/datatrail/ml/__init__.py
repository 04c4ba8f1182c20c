"""The ML lifecycle: models, evaluations, deployments, drift monitoring, reproducibility and the demo."""
