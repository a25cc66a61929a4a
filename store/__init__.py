"""The endpoints table: model, validation, and DynamoDB access (paginated scans,
conditional writes, per-region status). Never imports `actors` or `k8s`.
"""
