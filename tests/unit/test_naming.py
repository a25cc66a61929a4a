"""Object names (architecture section 3) have one home, `k8s.naming`; the table's own name
limits (`store.validation`, which cannot import `k8s`) and the builders' agree with it."""

from __future__ import annotations

from k8s import manifests, naming
from store import validation


def test_names_of_an_endpoints_objects() -> None:
    assert (naming.deployment_name("m1"), naming.canary_name("m1"), naming.ingress_name("m1")) == (
        "m1",
        "m1-canary",
        "inference-m1",
    )
    assert naming.endpoint_of_ingress("inference-m1") == "m1"
    assert (naming.base_of_canary("m1-canary"), naming.base_of_canary("m1")) == ("m1", "m1")


def test_name_limits_agree_everywhere() -> None:
    """Names up to 63 are valid; a canary needs a name of at most 56."""
    assert (naming.MAX_NAME_LENGTH, naming.MAX_CANARY_NAME_LENGTH) == (63, 56)
    assert (validation.MAX_NAME_LENGTH, validation.MAX_CANARY_NAME_LENGTH) == (63, 56)
    assert (manifests.MAX_NAME_LENGTH, manifests.common.MAX_CANARY_NAME_LENGTH) == (63, 56)
    assert manifests.canary_name("m1") == naming.canary_name("m1")
    assert manifests.ingress_name("m1") == naming.ingress_name("m1")
