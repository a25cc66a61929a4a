"""The endpoints table: model, validation, and DynamoDB access (paginated scans,
conditional writes, per-region status). Never imports `actors` or `k8s`.

`DynamoEndpointStore` is the one class that talks to DynamoDB; `Endpoint` and
friends are the parsed item; every failure is a `StoreError` subclass.
"""

from store.dynamo import DynamoEndpointStore
from store.errors import (
    ConditionFailed,
    InvalidEndpoint,
    ItemExists,
    ItemNotFound,
    OperationRefused,
    Retryable,
    StoreError,
    TableNotFound,
    Throttled,
    Unavailable,
)
from store.item import LoadedItem, content_hash, load_item
from store.model import (
    DESIRED_STATES,
    REGION_STATES,
    AutoscalingSpec,
    Canary,
    Endpoint,
    EndpointSpec,
    Metric,
    RegionStatus,
    Resources,
    parse_endpoint,
    utc_timestamp,
)
from store.validation import validate_item

__all__ = [
    "DESIRED_STATES",
    "REGION_STATES",
    "AutoscalingSpec",
    "Canary",
    "ConditionFailed",
    "DynamoEndpointStore",
    "Endpoint",
    "EndpointSpec",
    "InvalidEndpoint",
    "ItemExists",
    "ItemNotFound",
    "LoadedItem",
    "Metric",
    "OperationRefused",
    "RegionStatus",
    "Resources",
    "Retryable",
    "StoreError",
    "TableNotFound",
    "Throttled",
    "Unavailable",
    "content_hash",
    "load_item",
    "parse_endpoint",
    "utc_timestamp",
    "validate_item",
]
